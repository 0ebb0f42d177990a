/**
 * `deno task bench`: Lantern on WASM and on native onnxruntime against PyTorch eager on the same
 * machine, in the same run, on MobileNetV2 and ResNet-50 at 224×224; then cold start and the HTTP
 * service under load.
 *
 * PyTorch runs in a worker process (`bench/torch_bench.py serve`) that answers one JSON request per
 * line. The sides take turns per case (Lantern WASM, Lantern native, PyTorch: each its warm-ups
 * and then its repetitions) and never overlap: each gets the whole machine with the same thread
 * count. Each side times its own work; the first timed result of each side is compared with
 * PyTorch's, so the table also shows that they computed the same thing (SmoothGrad,
 * activation-max and LIME draw different random numbers on the two sides and compare times only).
 *
 *   deno task bench                  # full suite (≤ 15 minutes on 2 cores)
 *   deno task bench --quick          # MobileNetV2 only, fewer repetitions
 *   deno task bench --only fwd+bwd   # cases whose name contains the substring
 *   deno task bench --only cold      # cold start only
 *   deno task bench --only load      # the HTTP service under load only
 *   deno task bench --only roofline  # the WASM and PyTorch GEMM peaks only
 *   deno task bench --engines wasm   # leave native onnxruntime out
 *   deno task bench --profile        # where Lantern's time goes in MobileNetV2 forward+backward
 *
 * Results go to `out/bench/results.json`; see `bench/README.md`.
 *
 * @module
 */
import { loadOrt } from "../kernels/backend.ts";
import {
  AM_STEPS,
  AM_WARM_STEPS,
  type Case,
  caseName,
  comparable,
  type Engine,
  type Kind,
  lanternCall,
  LIME_SAMPLES,
  type Loaded,
  loadModel,
  type RunOut,
  suite,
  torchCall,
} from "./cases.ts";
import { type ColdStart, coldStart } from "./cold_start.ts";
import { forwardFlops, measureRoofline, type Roofline } from "./roofline.ts";
import {
  command,
  delay,
  formatMs,
  loadavg,
  median,
  mib,
  OUT,
  peakRss,
  relDiff,
  resetPeakRss,
  ROOT,
  trackWasmHeaps,
  wasmHeapBytes,
} from "./common.ts";
import type { LoadTestReport } from "./load.ts";
import { profile } from "./profile.ts";
import { TorchWorker } from "./torch_worker.ts";

/** Pause between sides so neither's idle worker threads still spin when the next starts. */
const HANDOVER_MS = 30;
/**
 * Wall-clock budget of the model cases: no repetition beyond the first of a case starts if the
 * last one suggests it would end later than this. Cold start and the load test come after.
 */
const SUITE_BUDGET_MS = 780_000;

/** Timings of one side of a case. */
interface Side {
  /** Median of the timed repetitions. */
  median_ms: number;
  /** Fastest timed repetition (least disturbed by other load on the machine). */
  min_ms: number;
  /** Every timed repetition, in order. */
  times_ms: number[];
  /** The first warm-up call (includes one-time graph building and session creation). */
  first_ms: number;
  /** Largest peak RSS of the side's process over the timed calls (VmHWM reset before each). */
  peak_rss_bytes?: number;
  /** Medians of the case-specific numbers. */
  extra?: Record<string, number>;
}

type SideName = Engine | "torch";

interface CaseResult {
  name: string;
  model: string;
  kind: Kind;
  batch: number;
  warmup: number;
  /** Timed repetitions run (fewer than `planned_reps` when the suite budget ran out). */
  reps: number;
  planned_reps: number;
  sides: Partial<Record<SideName, Side>>;
  /** Engine median / PyTorch median; below 1 means Lantern is faster. */
  ratio: Partial<Record<Engine, number>>;
  /**
   * Each engine's first timed result against PyTorch's: max |L − T| / max |T| and
   * ‖L − T‖₂ / ‖T‖₂; null when the case compares times only or the shapes differ.
   */
  diff: Partial<Record<Engine, { max: number; l2: number } | null>>;
}

type SideFn = (warm: boolean, first: boolean) => Promise<RunOut>;

/** Time case `c`: each side in turn runs its warm-ups, then its repetitions. */
async function runCase(
  m: Loaded,
  c: Case,
  torch: TorchWorker,
  deadline: number,
): Promise<CaseResult> {
  const savePath = `${OUT}/${c.model}_${c.kind}_b${c.batch}.torch.npy`;
  const sides: [SideName, SideFn][] = [];
  for (const engine of ["wasm", "native"] as const) {
    if (!m.models[engine]) continue;
    sides.push([engine, async (warm) => {
      resetPeakRss();
      const out = await lanternCall(m, engine, c, warm);
      return { ...out, peak: peakRss() };
    }]);
  }
  sides.push([
    "torch",
    (warm, first) =>
      torchCall(torch, m, c, { warm, save: first && comparable(c.kind) ? savePath : undefined }),
  ]);
  // Each side runs its warm-ups and then all its repetitions before the next side starts: the
  // first calls after the other process has had the CPU are slow for reasons of the machine, not
  // of either side (a 20 ms WASM MobileNetV2 forward took 65–75 ms right after a PyTorch call),
  // and a side's own warm-ups absorb that when they come right before its timed calls.
  const firstMs: Partial<Record<SideName, number>> = {};
  const runs: Partial<Record<SideName, RunOut[]>> = {};
  for (const [name, fn] of sides) {
    for (let i = 0; i < c.warmup; i++) {
      const t = performance.now();
      const out = await fn(true, false);
      if (i === 0) firstMs[name] = name === "torch" ? out.ms : performance.now() - t;
    }
    // The budget is shared: each side gets the same number of repetitions as the first one got.
    const reps = name === sides[0][0] ? c.reps : runs[sides[0][0]]!.length;
    for (let i = 0; i < reps; i++) {
      const start = performance.now();
      (runs[name] ??= []).push(await fn(false, i === 0));
      const each = performance.now() - start;
      if (
        name === sides[0][0] && i + 1 < reps && performance.now() + each * sides.length > deadline
      ) {
        break;
      }
    }
    await delay(HANDOVER_MS);
  }
  const result: CaseResult = {
    name: caseName(c),
    model: c.model,
    kind: c.kind,
    batch: c.batch,
    warmup: c.warmup,
    reps: runs.torch!.length,
    planned_reps: c.reps,
    sides: {},
    ratio: {},
    diff: {},
  };
  for (const [name] of sides) {
    const list = runs[name]!;
    const times = list.map((r) => r.ms);
    const peaks = list.map((r) => r.peak).filter((p): p is number => p !== undefined);
    const keys = Object.keys(list[0].extra ?? {});
    result.sides[name] = {
      median_ms: median(times),
      min_ms: Math.min(...times),
      times_ms: times,
      first_ms: firstMs[name] ?? NaN,
      peak_rss_bytes: peaks.length ? Math.max(...peaks) : undefined,
      extra: keys.length
        ? Object.fromEntries(keys.map((k) => [k, median(list.map((r) => r.extra![k]))]))
        : undefined,
    };
  }
  const reference = runs.torch![0].result;
  for (const engine of ["wasm", "native"] as const) {
    const side = result.sides[engine];
    if (!side) continue;
    result.ratio[engine] = side.median_ms / result.sides.torch!.median_ms;
    const mine = runs[engine]![0].result;
    result.diff[engine] = reference && mine && mine.dims.join() === reference.dims.join()
      ? relDiff(mine.data, reference.data)
      : null;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

function table(results: readonly CaseResult[], engines: readonly Engine[]): string {
  const head = ["case", "reps"];
  for (const e of engines) head.push(`${e} ms`);
  head.push("PyTorch ms");
  for (const e of engines) head.push(`${e}/PT`);
  head.push(`peak MiB ${[...engines.map((e) => e[0]), "PT"].join("/")}`);
  for (const e of engines) head.push(`${e} L2 diff`);
  const body = results.map((r) => {
    const row = [
      r.name,
      r.reps === r.planned_reps ? String(r.reps) : `${r.reps}/${r.planned_reps}`,
    ];
    for (const e of engines) row.push(formatMs(r.sides[e]?.median_ms ?? NaN));
    row.push(formatMs(r.sides.torch!.median_ms));
    for (const e of engines) row.push(r.ratio[e]?.toFixed(2) ?? "n/a");
    row.push(
      [...engines, "torch" as const].map((s) => mib(r.sides[s]?.peak_rss_bytes)).join("/"),
    );
    for (const e of engines) {
      const d = r.diff[e];
      row.push(
        d ? d.l2.toExponential(1) : !comparable(r.kind) || !r.sides[e] ? "n/a" : "shape differs",
      );
    }
    return row;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const fmt = (row: string[]) =>
    row.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join("  ");
  return [fmt(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(fmt)].join("\n");
}

/** The extra numbers of the method cases, one line each. */
function methodNotes(results: readonly CaseResult[]): string[] {
  const notes: string[] = [];
  for (const r of results) {
    const w = r.sides.wasm?.extra, t = r.sides.torch?.extra, n = r.sides.native?.extra;
    if (!w || !t) continue;
    if (r.kind === "actmax") {
      notes.push(
        `${r.name} (after ${AM_WARM_STEPS} warm-up steps): Lantern WASM ${
          w.steps_per_second.toFixed(1)
        }${n ? `, native ${n.steps_per_second.toFixed(1)}` : ""}, PyTorch ${
          t.steps_per_second.toFixed(1)
        } steps/s (${AM_STEPS} steps timed)`,
      );
    } else if (r.kind === "lime") {
      const wasm = r.sides.wasm!;
      notes.push(
        `${r.name}: Lantern WASM ${formatMs(wasm.median_ms)} ms = segmentation ${
          formatMs(w.segmentation_ms)
        } + sampling+forward ${formatMs(w.sampling_forward_ms)} + regression ${
          formatMs(w.regression_ms)
        } + other ${
          formatMs(w.other_ms)
        } ms (${w.segments} superpixels); PyTorch ${LIME_SAMPLES} ` +
          `forward passes ${formatMs(r.sides.torch!.median_ms)} ms (skimage quickshift ${
            formatMs(t.segmentation_ms)
          } ms, ${t.segments} superpixels, not in the ratio)`,
      );
    }
  }
  return notes;
}

/**
 * The peaks, and per model the fastest forward pass WASM could give at its peak next to the
 * measured times: what bounds the WASM/PyTorch ratios.
 */
function rooflineNotes(
  r: Roofline,
  results: readonly CaseResult[],
  flops: Record<string, number>,
): string[] {
  const g = (v: number) => v.toFixed(1);
  const fma = r.wasm_fma
    ? `; with relaxed-SIMD FMA ${g(r.wasm_fma.one)} / ${g(r.wasm_fma.all)} (${r.wasm_fma.tile})`
    : "; relaxed SIMD unavailable";
  const notes = [
    `roofline, GFLOP/s on 1 / ${r.threads} threads: WASM SIMD128 GEMM kernel ${g(r.wasm.one)} / ${
      g(r.wasm.all)
    } (${r.wasm.tile} tile)${fma}; PyTorch sgemm (n=1024) ${g(r.torch.one)} / ${g(r.torch.all)}`,
  ];
  const peak = Math.max(r.wasm.all, r.wasm_fma?.all ?? 0);
  for (const [model, f] of Object.entries(flops)) {
    for (const batch of [1, 16]) {
      const c = results.find((x) => x.model === model && x.kind === "forward" && x.batch === batch);
      if (!c) continue;
      const at = (side: SideName) => {
        const ms = c.sides[side]?.median_ms;
        return ms ? `${side} ${formatMs(ms)} ms (${g(f * batch / ms / 1e6)} GFLOP/s)` : "";
      };
      const floor = f * batch / peak / 1e6;
      notes.push(
        `  ${model} forward b${batch}, ${g(f * batch / 1e9)} GFLOP: at the WASM peak ≥ ${
          formatMs(floor)
        } ms = ${(floor / c.sides.torch!.median_ms).toFixed(2)}× PyTorch; measured ${
          [at("wasm"), at("native"), at("torch")].filter(Boolean).join(", ")
        }`,
      );
    }
  }
  return notes;
}

function coldTable(cold: readonly ColdStart[]): string[] {
  return cold.map((c) =>
    `cold start, MobileNetV2 Grad-CAM on one photo via the CLI, --backend ${c.backend} (${c.used}): ` +
    `median ${formatMs(c.median_ms)} ms, min ${
      formatMs(c.min_ms)
    } ms over ${c.times_ms.length} runs`
  );
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  only?: string;
  profile: boolean;
  engines: Engine[];
}

function parseArgs(args: readonly string[]): Options {
  const options: Options = { quick: false, profile: false, engines: ["wasm", "native"] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--quick") options.quick = true;
    else if (a === "--profile") options.profile = true;
    else if (a === "--only" || a === "--engines") {
      const v = args[++i];
      if (v === undefined) throw new Error(`Cannot parse arguments: ${a} needs a value`);
      if (a === "--only") options.only = v;
      else options.engines = parseEngines(v);
    } else if (a.startsWith("--only=")) options.only = a.slice("--only=".length);
    else if (a.startsWith("--engines=")) {
      options.engines = parseEngines(a.slice("--engines=".length));
    } else {
      throw new Error(
        `Cannot parse arguments: unknown option "${a}", expected --quick, --only <case>, ` +
          `--engines wasm,native, --profile`,
      );
    }
  }
  return options;
}

function parseEngines(value: string): Engine[] {
  const list = value.split(",").map((s) => s.trim());
  for (const e of list) {
    if (e !== "wasm" && e !== "native") {
      throw new Error(`Cannot parse --engines: "${e}" is not an engine, expected wasm or native`);
    }
  }
  if (!list.includes("wasm")) throw new Error("Cannot parse --engines: wasm is always measured");
  return list as Engine[];
}

async function hostInfo(): Promise<Record<string, unknown>> {
  const cpu = (() => {
    try {
      return /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "";
    } catch {
      return "";
    }
  })();
  return {
    commit: await command("git", ["rev-parse", "HEAD"]),
    dirty: (await command("git", ["status", "--porcelain", "--untracked-files=no"])) !== "",
    cpu,
  };
}

async function bench(options: Options): Promise<void> {
  const started = performance.now();
  const threads = navigator.hardwareConcurrency;
  const only = options.only;
  const cases = suite(options.quick).filter((c) => !only || caseName(c).includes(only));
  const runCold = !options.quick && (!only || "cold start".includes(only));
  const runLoad = !options.quick && (!only || "load test".includes(only));
  const runRoofline = !options.quick && (!only || "roofline".includes(only));
  if (!cases.length && !runCold && !runLoad && !runRoofline) {
    throw new Error(`Cannot run bench: no case name contains "${only}"`);
  }
  await Deno.mkdir(OUT, { recursive: true });
  const host = await hostInfo();
  const loadStart = loadavg();
  const results: CaseResult[] = [];
  const setup: Record<string, unknown> = {};
  let ortVersion = "", hello: Record<string, unknown> = {};
  const engines = new Set<Engine>(["wasm"]);
  let roofline: Roofline | undefined;
  const flops: Record<string, number> = {};
  if (cases.length || runRoofline) {
    const torch = new TorchWorker(threads);
    hello = await torch.start();
    console.log(
      `Lantern ${String(host.commit).slice(0, 12)}${host.dirty ? " (uncommitted changes)" : ""} · ${
        new Date().toISOString()
      }\nhost: ${threads} cores (${host.cpu}), load ${loadStart}\nDeno ${Deno.version.deno}, ` +
        `torch ${hello.torch} (threads ${hello.threads}), Lantern threads ${threads}`,
    );
    try {
      for (const name of [...new Set(cases.map((c) => c.model))]) {
        const loaded = await loadModel(name, torch, options.engines);
        for (const e of Object.keys(loaded.models) as Engine[]) engines.add(e);
        const wasm = loaded.models.wasm!;
        flops[name] = forwardFlops(wasm.proto.graph!, await wasm.tensors());
        setup[name] = {
          forward_gflop: flops[name] / 1e9,
          open_ms: loaded.openMs,
          top1_agree: loaded.top1Agree,
          missing: loaded.missing,
        };
        ortVersion ||= (await loadOrt(loaded.models.wasm!.backend)).env.versions?.web ?? "";
        for (const [e, ms] of Object.entries(loaded.openMs)) {
          console.log(
            `${name} on ${e}: opened in ${ms.toFixed(0)} ms; top-1 matches torch on ${
              loaded.top1Agree[e as Engine]
            }/${loaded.input.dims[0]} images`,
          );
        }
        for (const [e, why] of Object.entries(loaded.missing)) {
          console.log(`${name} on ${e}: not measured, ${why}`);
        }
        for (const c of cases.filter((c) => c.model === name)) {
          const t = performance.now();
          const result = await runCase(loaded, c, torch, started + SUITE_BUDGET_MS);
          results.push(result);
          const sides = Object.entries(result.sides).map(([s, v]) =>
            `${s} ${formatMs(v.median_ms)}`
          ).join(", ");
          console.log(
            `  ${result.name}: ${c.warmup} warm-up + ${result.reps} reps in ${
              ((performance.now() - t) / 1000).toFixed(0)
            } s — ${sides} ms`,
          );
        }
        for (const model of Object.values(loaded.models)) await model.dispose();
      }
      if (runRoofline) {
        console.log("roofline: GEMM peaks of WASM SIMD128 and PyTorch …");
        roofline = await measureRoofline(torch, threads);
      }
    } finally {
      await torch.close();
    }
  }
  let cold: ColdStart[] = [];
  if (runCold) {
    console.log("cold start (5 CLI runs per backend after one discarded run) …");
    cold = await coldStart(["wasm", ...(options.engines.includes("native") ? ["native"] : [])]);
  }
  let load: LoadTestReport | undefined;
  if (runLoad) {
    console.log("load test of the HTTP service (300 Grad-CAM requests, 16 in flight) …");
    load = await loadTestProcess();
  }
  const wall = (performance.now() - started) / 1000;
  const loadEnd = loadavg();
  const shown = [...engines];
  if (results.length) {
    console.log(`\n${table(results, shown)}\n`);
    console.log(
      "ms: median after warm-up. ratio = Lantern / PyTorch medians (< 1: Lantern faster).\n" +
        "peak MiB: the process's peak RSS during a timed call (Lantern's process holds the model\n" +
        "on both engines). L2 diff = ‖Lantern − PyTorch‖₂ / ‖PyTorch‖₂ of the first timed result;\n" +
        "float32 gradients of ReLU nets flip masks near 0 and 6, so torch float32 vs float64\n" +
        "alone differ by up to ~6e-3 on these inputs. n/a: the sides draw different random numbers.",
    );
    for (const line of methodNotes(results)) console.log(line);
  }
  if (roofline) { for (const line of rooflineNotes(roofline, results, flops)) console.log(line); }
  for (const line of coldTable(cold)) console.log(line);
  if (load) {
    console.log(
      `load test: ${load.requests} requests, ${load.concurrency} in flight: p50 ${
        formatMs(load.p50Ms)
      } ms, p99 ${formatMs(load.p99Ms)} ms, ${load.throughput.toFixed(1)} req/s, statuses ${
        JSON.stringify(load.statuses)
      }, 5xx other than 503: ${load.serverErrors}; RSS ${load.rssMiB.baseline.toFixed(0)} → ${
        load.rssMiB.after.map((v) => v.toFixed(0)).join(" → ")
      } MiB, V8 heap ${load.heapMiB.baseline.toFixed(1)} → ${
        load.heapMiB.after.map((v) => v.toFixed(1)).join(" → ")
      } MiB${load.gc ? " (after full GCs)" : ""}`,
    );
  }
  console.log(`wall ${wall.toFixed(0)} s; load average ${loadStart} → ${loadEnd}`);
  const path = `${OUT}/results.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify(
      {
        schema: 2,
        commit: host.commit,
        uncommitted_changes: host.dirty,
        date: new Date().toISOString(),
        host: {
          cores: threads,
          cpu: host.cpu,
          os: `${Deno.build.os} ${Deno.osRelease()}`,
          loadavg_start: loadStart,
          loadavg_end: loadEnd,
        },
        versions: {
          deno: Deno.version.deno,
          v8: Deno.version.v8,
          onnxruntime_web: ortVersion,
          torch: hello.torch,
          torchvision: hello.torchvision,
          python: hello.python,
        },
        threads: { lantern: threads, torch: hello.threads },
        options: { quick: options.quick, only: only ?? null, engines: options.engines },
        wasm_heap_bytes: wasmHeapBytes(),
        setup,
        cases: results,
        roofline: roofline ?? null,
        cold_start: cold,
        load_test: load ?? null,
        wall_s: wall,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`wrote ${path}`);
}

/** Run `bench/load.ts` in a fresh process, so its memory readings are the service's own. */
async function loadTestProcess(): Promise<LoadTestReport> {
  const path = `${OUT}/load_test.json`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--expose-gc",
      `--config=${ROOT}/deno.json`,
      `${ROOT}/bench/load.ts`,
      "--json",
      path,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  const report = JSON.parse(await Deno.readTextFile(path)) as LoadTestReport;
  if (!out.success) console.log(`load test: ${report.serverErrors} unexpected 5xx answers`);
  return report;
}

if (import.meta.main) {
  try {
    const options = parseArgs(Deno.args);
    trackWasmHeaps();
    if (options.profile) await profile();
    else await bench(options);
  } catch (e) {
    console.error(`error: ${(e as Error).message ?? e}`);
    Deno.exit(1);
  }
}
