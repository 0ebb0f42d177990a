/**
 * Cold start: wall time from `deno run` to the first heatmap on disk, for MobileNetV2 Grad-CAM on
 * one photo through the CLI (`lantern explain`), with Deno's module cache already warm (the first
 * run of each backend is discarded).
 *
 * @module
 */
import { median, MOBILENET, ROOT } from "./common.ts";

/** Cold-start timings of one backend choice. */
export interface ColdStart {
  /** The `--backend` value. */
  backend: string;
  /** Backend the CLI reported using. */
  used: string;
  median_ms: number;
  min_ms: number;
  times_ms: number[];
}

const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
];

async function once(backend: string, out: string): Promise<{ ms: number; used: string }> {
  const t0 = performance.now();
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...PERMISSIONS,
      `--config=${ROOT}/deno.json`,
      `${ROOT}/cli/main.ts`,
      "explain",
      "--model",
      MOBILENET,
      "--method",
      "gradcam",
      "--input",
      `${ROOT}/examples/images/chelsea.png`,
      "--backend",
      backend,
      "--out",
      out,
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  if (!result.success) {
    const why = new TextDecoder().decode(result.stderr).trim().split("\n").at(-1);
    throw new Error(`Cannot measure cold start on ${backend}: ${why}`);
  }
  const json = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
  Deno.statSync(`${out}/chelsea_gradcam.png`);
  return { ms, used: json.model?.backend?.name ?? "?" };
}

/** Time `reps` fresh CLI runs per backend (after one discarded run each). */
export async function coldStart(
  backends: readonly string[],
  options: { reps?: number } = {},
): Promise<ColdStart[]> {
  const reps = options.reps ?? 5;
  const out = await Deno.makeTempDir({ prefix: "lantern-cold-" });
  const results: ColdStart[] = [];
  try {
    for (const backend of backends) {
      let first;
      try {
        first = await once(backend, out);
      } catch (e) {
        console.log(`  cold start (${backend}): skipped, ${(e as Error).message}`);
        continue;
      }
      const times: number[] = [];
      for (let i = 0; i < reps; i++) times.push((await once(backend, out)).ms);
      results.push({
        backend,
        used: first.used,
        median_ms: median(times),
        min_ms: Math.min(...times),
        times_ms: times,
      });
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
  return results;
}
