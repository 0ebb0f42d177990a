/**
 * A bounded load test of the HTTP service on loopback: a few hundred Grad-CAM requests on the
 * bundled emotion model, 16 in flight at a time, against a real `Deno.serve` listener. Prints
 * p50/p99 latency, status counts and memory before and after.
 *
 * ```sh
 * deno run -A bench/load.ts [--requests 300] [--concurrency 16]
 * deno run -A --v8-flags=--expose-gc bench/load.ts   # memory compared after a full GC
 * deno run -A bench/load.ts --json report.json       # also write the report as JSON
 * ```
 *
 * @module
 */
import { createHandler } from "../server/handler.ts";
import { ROOT } from "./common.ts";

/** Options of {@linkcode loadTest}. */
export interface LoadTestOptions {
  /** Requests in total (default 300). */
  readonly requests?: number;
  /** Requests in flight at once (default 16). */
  readonly concurrency?: number;
  /** Method to run (default `gradcam`). */
  readonly method?: string;
  /**
   * Measured passes the requests are split into (default 2): memory is read after each, so a
   * leak shows as growth in every pass, where an allocator's high-water mark grows only once.
   */
  readonly rounds?: number;
  /** Print the report (default true). */
  readonly print?: boolean;
}

/** What {@linkcode loadTest} measured. */
export interface LoadTestReport {
  /** Requests sent. */
  readonly requests: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
  /** Count of each HTTP status. */
  readonly statuses: Readonly<Record<string, number>>;
  /** 5xx answers other than deliberate 503s (should be 0). */
  readonly serverErrors: number;
  /** Median latency, ms. */
  readonly p50Ms: number;
  /** 99th-percentile latency, ms. */
  readonly p99Ms: number;
  /** Slowest answer, ms. */
  readonly maxMs: number;
  /** Requests per second over the whole run. */
  readonly throughput: number;
  /** Resident set size after warm-up, at its sampled peak, and after each pass, MiB. */
  readonly rssMiB: {
    readonly baseline: number;
    readonly peak: number;
    readonly after: readonly number[];
  };
  /** V8 heap in use after warm-up and after each pass, MiB. */
  readonly heapMiB: { readonly baseline: number; readonly after: readonly number[] };
  /** Whether memory was read after a forced full GC (`--v8-flags=--expose-gc`). */
  readonly gc: boolean;
}

const MiB = 1024 * 1024;

function percentile(sorted: readonly number[], p: number): number {
  // Nearest-rank percentile.
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

async function settle(): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((ok) => setTimeout(ok, 200));
  }
  return Boolean(gc);
}

/**
 * Start the service on a free loopback port with the emotion model, send `requests` Grad-CAM
 * requests with `concurrency` in flight, and report latency percentiles, status counts and
 * memory before and after.
 */
export async function loadTest(options: LoadTestOptions = {}): Promise<LoadTestReport> {
  const requests = options.requests ?? 300;
  const concurrency = options.concurrency ?? 16;
  const method = options.method ?? "gradcam";
  const image = await Deno.readFile(`${ROOT}/examples/images/faces/astronaut_face.png`);
  const handler = createHandler({
    models: { emotion: { source: `${ROOT}/examples/models/emotion.onnx`, backend: "wasm" } },
    log: false,
  });
  await handler.ready();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler);
  const url = `http://127.0.0.1:${server.addr.port}/v1/explain?method=${method}`;
  const send = async (): Promise<[number, number]> => {
    const t0 = performance.now();
    const r = await fetch(url, {
      method: "POST",
      body: image,
      headers: { "content-type": "image/png" },
    });
    await r.arrayBuffer();
    return [r.status, performance.now() - t0];
  };
  try {
    // Warm-up at full concurrency: gradient graphs, sessions and the allocators' high-water
    // mark belong in the baseline; what the measured run adds on top would be a leak.
    await Promise.all(Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < 4; i++) await send();
    }));
    const gc = await settle();
    const before = Deno.memoryUsage();
    let peak = before.rss;
    const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 50);
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    const rounds = Math.max(1, options.rounds ?? 2);
    const after: Deno.MemoryUsage[] = [];
    let seconds = 0;
    for (let pass = 0; pass < rounds; pass++) {
      const quota = Math.round((requests * (pass + 1)) / rounds);
      let sent = Math.round((requests * pass) / rounds);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (sent < quota) {
          sent++;
          const [status, ms] = await send();
          statuses[status] = (statuses[status] ?? 0) + 1;
          latencies.push(ms);
        }
      }));
      seconds += (performance.now() - t0) / 1000;
      await settle();
      after.push(Deno.memoryUsage());
    }
    clearInterval(sampler);
    latencies.sort((a, b) => a - b);
    const round = (x: number) => Math.round(x * 10) / 10;
    const report: LoadTestReport = {
      requests,
      concurrency,
      statuses,
      serverErrors: Object.entries(statuses)
        .filter(([s]) => Number(s) >= 500 && Number(s) !== 503)
        .reduce((n, [, c]) => n + c, 0),
      p50Ms: round(percentile(latencies, 0.5)),
      p99Ms: round(percentile(latencies, 0.99)),
      maxMs: round(latencies.at(-1) ?? 0),
      throughput: round(requests / seconds),
      rssMiB: {
        baseline: round(before.rss / MiB),
        peak: round(Math.max(peak, ...after.map((m) => m.rss)) / MiB),
        after: after.map((m) => round(m.rss / MiB)),
      },
      heapMiB: {
        baseline: round(before.heapUsed / MiB),
        after: after.map((m) => round(m.heapUsed / MiB)),
      },
      gc,
    };
    if (options.print ?? true) {
      console.log(
        `load: ${requests} × ${method}, ${concurrency} in flight: p50 ${report.p50Ms} ms, ` +
          `p99 ${report.p99Ms} ms, max ${report.maxMs} ms, ${report.throughput} req/s; ` +
          `statuses ${JSON.stringify(statuses)}, unexpected 5xx ${report.serverErrors}; ` +
          `rss ${report.rssMiB.baseline} → after each pass ${report.rssMiB.after.join(", ")} ` +
          `(peak ${report.rssMiB.peak}) MiB, heap ${report.heapMiB.baseline} → ` +
          `${report.heapMiB.after.join(", ")} MiB` +
          (gc ? " (after full GC)" : " (no --expose-gc: after a settle period)"),
      );
    }
    return report;
  } finally {
    await server.shutdown();
    await handler.dispose();
  }
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Number(Deno.args[i + 1]) : undefined;
  };
  const report = await loadTest({ requests: arg("requests"), concurrency: arg("concurrency") });
  const json = Deno.args.indexOf("--json");
  // The bench runs this module in a fresh process (its memory readings are then the service's
  // own) and reads the report from this file.
  if (json >= 0) await Deno.writeTextFile(Deno.args[json + 1], JSON.stringify(report));
  Deno.exit(report.serverErrors === 0 ? 0 : 1);
}
