/**
 * Times the gradient graphs of `graph/autodiff.ts` on 2-thread WASM: the forward model, the
 * class-score gradient with respect to the input (integrated gradients' case) and with respect
 * to the CAM layer (Grad-CAM's case: `of` the scores, `wrt` and `keep` the layer feeding the
 * global pooling head), for MobileNetV2 and ResNet-50 at batch 1 and 16.
 *
 * Optionally against a snapshot of an older `graph/` (`--baseline DIR`, a directory holding
 * `graph/` and `pipeline/errors.ts`) and against PyTorch (`--torch`, through
 * `bench/torch_bench.py serve`), one repetition of each side in turn so that all of them see the
 * same background load. `--profile` prints onnxruntime's per-op-type totals instead, split into
 * forward and backward nodes.
 *
 * ```sh
 * deno run --allow-all tools/backward_speed.ts [--models mobilenet_v2,resnet50] [--batches 1,16]
 *   [--cases forward,input,layer] [--reps 10] [--threads 2] [--baseline DIR] [--torch] [--profile]
 *   [--cpu]   # with --threads 1: CPU time instead of wall time (PyTorch too, on one thread)
 *   [--session JSON]   # onnxruntime session options to try (against --baseline .: the same graph)
 * ```
 *
 * A baseline from the last commit: `mkdir -p /tmp/base && git archive HEAD graph
 * pipeline/errors.ts | tar -x -C /tmp/base`, then `--baseline /tmp/base`. On a busy machine use
 * `--threads 1 --cpu`: wall times at 2 threads, PyTorch's above all, swing by several times there.
 *
 * ResNet-50 is `out/bench/resnet50.onnx`, written by `deno task bench --only resnet50` (or
 * `/usr/bin/python3 bench/torch_bench.py export out/bench/resnet50.onnx`).
 *
 * @module
 */
import { buildGradientGraph } from "../graph/autodiff.ts";
import { findHead } from "../graph/head.ts";
import { decodeModel } from "../graph/onnx_io.ts";
import { loadOrt } from "../kernels/backend.ts";
import { createSession, type GraphSession } from "../kernels/session.ts";
import { type Tensor, tensor } from "../kernels/tensor.ts";
import type { BackendInfo } from "../pipeline/types.ts";
import { CLASSES, median, MOBILENET, PIXELS, RESNET50, ROOT } from "../bench/common.ts";
import { opLabel, type ProfileEvent } from "../bench/profile.ts";
import { TorchWorker } from "../bench/torch_worker.ts";

const MODELS: Record<string, string> = { mobilenet_v2: MOBILENET, resnet50: RESNET50 };
const MARK = "@@backward-speed ";

type Case = "forward" | "input" | "layer";
type Build = typeof buildGradientGraph;

interface Options {
  models: string[];
  batches: number[];
  cases: Case[];
  reps: number;
  threads: number;
  baseline?: string;
  torch: boolean;
  profile: boolean;
  cpu: boolean;
  /** Session options to try instead of kernels/session.ts's (JSON, e.g. `{"enableMemPattern":false}`). */
  session?: Record<string, unknown>;
  profileChild?: string;
}

function parseArgs(args: string[]): Options {
  const o: Options = {
    models: ["mobilenet_v2", "resnet50"],
    batches: [1, 16],
    cases: ["forward", "input", "layer"],
    reps: 10,
    threads: 2,
    torch: false,
    profile: false,
    cpu: false,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i], v = () => args[++i] ?? "";
    if (a === "--models") o.models = v().split(",");
    else if (a === "--batches") o.batches = v().split(",").map(Number);
    else if (a === "--cases") o.cases = v().split(",") as Case[];
    else if (a === "--reps") o.reps = Number(v());
    else if (a === "--threads") o.threads = Number(v());
    else if (a === "--baseline") {
      const dir = v();
      o.baseline = dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`;
    } else if (a === "--torch") o.torch = true;
    else if (a === "--profile") o.profile = true;
    else if (a === "--cpu") o.cpu = true;
    else if (a === "--session") o.session = JSON.parse(v());
    else if (a === "--profile-child") o.profileChild = v();
    else {
      throw new Error(
        `Cannot parse arguments: unknown option "${a}", expected --models, --batches, --cases, --reps, --threads, --baseline, --torch or --profile`,
      );
    }
  }
  return o;
}

/** The graph a case runs: bytes, feeds builder and fetches. */
interface CaseGraph {
  bytes: Uint8Array;
  seed?: string;
  fetches: string[];
  nodes: number;
}

function caseGraph(build: Build, model: Uint8Array, which: Case): CaseGraph {
  const proto = decodeModel(model);
  const g = proto.graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  const input = g.input.find((i) => !inits.has(i.name))!.name;
  const output = g.output[0].name;
  if (which === "forward") return { bytes: model, fetches: [output], nodes: g.node.length };
  let spec;
  if (which === "input") spec = { of: output, wrt: [input] };
  else {
    const head = findHead(proto, output);
    if (!head.ok) throw new Error(`Cannot find the CAM layer of the model: ${head.reason}`);
    spec = { of: output, wrt: [head.head.layer], keep: [head.head.layer] };
  }
  const r = build(proto, spec);
  return {
    bytes: r.bytes,
    seed: r.seed,
    fetches: [...r.grads, ...r.outputs],
    nodes: decodeModel(r.bytes).graph!.node.length,
  };
}

function inputs(model: Uint8Array): { input: string } {
  const g = decodeModel(model).graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  return { input: g.input.find((i) => !inits.has(i.name))!.name };
}

/** A fixed pseudo-image: dense kernels take the same time whatever the values. */
function pattern(batch: number): Tensor {
  const data = new Float32Array(batch * PIXELS);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 12.9898) * 1.5;
  return tensor(data, [batch, 3, 224, 224]);
}

function feedsFor(input: string, c: CaseGraph, batch: number): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = { [input]: pattern(batch) };
  if (c.seed) {
    const seed = new Float32Array(batch * CLASSES);
    for (let i = 0; i < batch; i++) seed[i * CLASSES + 285] = 1;
    feeds[c.seed] = tensor(seed, [batch, CLASSES]);
  }
  return feeds;
}

/**
 * CPU time of this (the main) thread in ms, from `/proc/thread-self/schedstat`. With one WASM
 * thread onnxruntime computes on the calling thread, so this is the run's work, unaffected by
 * time spent waiting for a core on a loaded machine.
 */
function threadCpuMs(): number {
  return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]) / 1e6;
}

/**
 * A session with `options` merged over kernels/session.ts's (WASM, all graph optimizations), to
 * prototype session options without changing that module; its own sessions when none are given.
 */
async function openSession(
  bytes: Uint8Array,
  backend: BackendInfo,
  options: Record<string, unknown> | undefined,
): Promise<GraphSession> {
  if (!options) return createSession(bytes, backend);
  const ort = await loadOrt(backend);
  const s = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    ...options,
  });
  return {
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    async run(feeds, fetches) {
      const f: Record<string, InstanceType<typeof ort.Tensor>> = {};
      for (const [k, t] of Object.entries(feeds)) {
        f[k] = new ort.Tensor("float32", t.data, t.dims as number[]);
      }
      const out = await s.run(f, fetches ? [...fetches] : [...s.outputNames]);
      const r: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(out)) r[k] = tensor(v.data as Float32Array, v.dims);
      return r;
    },
    release: () => s.release(),
  };
}

/**
 * The bench worker's cases timed by the process's CPU time on one thread (`--cpu`): what the
 * work costs, whatever else runs on the machine.
 */
const TORCH_CPU_WORKER = `
import json, sys, time
sys.path.insert(0, ${JSON.stringify(`${ROOT}/bench`)})
sys.dont_write_bytecode = True
import torch
import torch_bench
torch.set_num_threads(1)
torch.set_num_interop_threads(1)
worker = torch_bench.Worker()
print(json.dumps({"threads": 1}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "quit":
        break
    if req["op"] == "load":
        reply = worker.load(req)
    else:
        t0 = time.process_time()
        reply = worker.run(req)
        reply["ms"] = (time.process_time() - t0) * 1000
    print(json.dumps(reply), flush=True)
`;

const TORCH_CASE: Record<Case, string> = { forward: "forward", input: "grad", layer: "gradcam" };

async function timeCases(o: Options): Promise<void> {
  const backend: BackendInfo = { name: "wasm", reason: "benchmark", threads: o.threads };
  if (o.cpu && o.threads !== 1) {
    throw new Error(`Cannot time CPU with ${o.threads} threads: --cpu needs --threads 1`);
  }
  const clock = o.cpu ? threadCpuMs : () => performance.now();
  const baseline: Build | undefined = o.baseline
    ? (await import(`${o.baseline}/graph/autodiff.ts`)).buildGradientGraph
    : undefined;
  const torch = o.torch
    ? new TorchWorker(o.threads, o.cpu ? { pythonArgs: ["-c", TORCH_CPU_WORKER] } : {})
    : undefined;
  await torch?.start();
  const rows: string[][] = [];
  const results: unknown[] = [];
  try {
    for (const name of o.models) {
      const model = Deno.readFileSync(MODELS[name]);
      const { input } = inputs(model);
      let targets: number[] = [];
      if (torch) {
        const r = await torch.request({
          op: "load",
          model: name,
          onnx: MODELS[name],
          input: `/tmp/backward_speed_${name}.npy`,
        });
        targets = r.targets as number[];
      }
      for (const which of o.cases) {
        const now = caseGraph(buildGradientGraph, model, which);
        const before = baseline && which !== "forward"
          ? caseGraph(baseline, model, which)
          : undefined;
        const sNow = await openSession(now.bytes, backend, o.session);
        // The baseline graph runs with kernels/session.ts's options: --session alone compares them.
        const sBefore = before ? await createSession(before.bytes, backend) : undefined;
        for (const batch of o.batches) {
          const fNow = feedsFor(input, now, batch);
          const fBefore = before ? feedsFor(input, before, batch) : undefined;
          const tq = {
            op: "run",
            model: name,
            case: TORCH_CASE[which],
            batch,
            target: targets.slice(0, batch),
          };
          // Warm-up, then one repetition of each side in turn.
          await sNow.run(fNow, now.fetches);
          if (sBefore) await sBefore.run(fBefore!, before!.fetches);
          if (torch) await torch.request(tq);
          const t: { now: number[]; before: number[]; torch: number[] } = {
            now: [],
            before: [],
            torch: [],
          };
          const reps = batch >= 16 ? Math.max(3, Math.ceil(o.reps / 2)) : o.reps;
          for (let r = 0; r < reps; r++) {
            let t0 = clock();
            await sNow.run(fNow, now.fetches);
            t.now.push(clock() - t0);
            if (sBefore) {
              t0 = clock();
              await sBefore.run(fBefore!, before!.fetches);
              t.before.push(clock() - t0);
            }
            if (torch) t.torch.push((await torch.request(tq)).ms as number);
          }
          const m = { now: median(t.now), before: median(t.before), torch: median(t.torch) };
          // Per repetition, then the median: robust to load that changes between repetitions.
          const paired = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]));
          results.push({ model: name, case: which, batch, reps, ...t });
          const row = [
            name,
            which,
            `b${batch}`,
            String(reps),
            m.now.toFixed(1),
            Math.min(...t.now).toFixed(1),
            before ? m.before.toFixed(1) : "",
            torch ? m.torch.toFixed(1) : "",
            torch ? paired(t.now, t.torch).toFixed(2) : "",
            torch && before ? paired(t.before, t.torch).toFixed(2) : "",
            before ? paired(t.now, t.before).toFixed(2) : "",
            `${now.nodes}${before ? `/${before.nodes}` : ""}`,
          ];
          rows.push(row);
          console.log(row.join("\t"));
        }
        await sNow.release();
        await sBefore?.release();
      }
    }
  } finally {
    await torch?.close();
  }
  const head = [
    "model",
    "case",
    "batch",
    "reps",
    "ms median",
    "ms min",
    "before ms",
    "torch ms",
    "ratio to torch",
    "before ratio",
    "now/before",
    "nodes (now/before)",
  ];
  console.log("\n| " + head.join(" | ") + " |");
  console.log("|" + head.map(() => " --- |").join(""));
  for (const r of rows) console.log("| " + r.join(" | ") + " |");
  await Deno.mkdir(`${ROOT}/out`, { recursive: true });
  await Deno.writeTextFile(
    `${ROOT}/out/backward_speed.json`,
    JSON.stringify(results, null, 1) + "\n",
  );
}

// ---------------------------------------------------------------------------------------------
// Profile: onnxruntime's per-node times, by op type, in a child process (the profiler prints
// its events to stdout).
// ---------------------------------------------------------------------------------------------

async function profileChild(o: Options, spec: string): Promise<void> {
  const [name, which, batchText] = spec.split(":");
  const batch = Number(batchText);
  const backend: BackendInfo = { name: "wasm", reason: "benchmark", threads: o.threads };
  const ort = await loadOrt(backend);
  const model = Deno.readFileSync(MODELS[name]);
  const { input } = inputs(model);
  const forward = decodeModel(model).graph!.node.map((n) => n.name);
  const build: Build = o.baseline
    ? (await import(`${o.baseline}/graph/autodiff.ts`)).buildGradientGraph
    : buildGradientGraph;
  const c = caseGraph(build, model, which as Case);
  const session = await ort.InferenceSession.create(c.bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    enableProfiling: true,
  });
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
  for (const [k, t] of Object.entries(feedsFor(input, c, batch))) {
    feeds[k] = new ort.Tensor("float32", t.data, t.dims as number[]);
  }
  const runs = batch >= 16 ? 3 : 6;
  for (let i = 0; i < runs; i++) await session.run(feeds);
  console.log(MARK + JSON.stringify({ forward }));
  session.endProfiling();
  console.log(MARK + "end");
  await session.release();
}

async function profile(o: Options): Promise<void> {
  for (const name of o.models) {
    for (const which of o.cases) {
      for (const batch of o.batches) {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            `--config=${ROOT}/deno.json`,
            import.meta.url,
            "--threads",
            String(o.threads),
            ...(o.baseline ? ["--baseline", o.baseline] : []),
            "--profile-child",
            `${name}:${which}:${batch}`,
          ],
          stdout: "piped",
          stderr: "inherit",
        }).output();
        if (!out.success) throw new Error(`Cannot profile ${name} ${which} b${batch}`);
        let forward = new Set<string>();
        const events: ProfileEvent[] = [];
        let inside = false;
        for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
          if (line.startsWith(MARK)) {
            const rest = line.slice(MARK.length);
            if (rest === "end") inside = false;
            else {
              forward = new Set(JSON.parse(rest).forward);
              inside = true;
            }
          } else if (inside && line.startsWith("{")) {
            try {
              events.push(JSON.parse(line.replace(/,\s*$/, "")));
            } catch { /* not an event */ }
          }
        }
        const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run")
          .sort((a, b) => a.ts - b.ts);
        const from = runs.length > 1 ? runs[1].ts : 0;
        const kept = Math.max(1, runs.length - 1);
        const byOp = new Map<string, { f: number; b: number; n: number }>();
        for (const e of events) {
          if (e.cat !== "Node" || e.ts < from || !e.name.endsWith("_kernel_time")) continue;
          const node = e.name.slice(0, -"_kernel_time".length);
          const op = opLabel(e);
          const v = byOp.get(op) ?? { f: 0, b: 0, n: 0 };
          if (forward.has(node)) v.f += e.dur / 1000 / kept;
          else v.b += e.dur / 1000 / kept;
          v.n += 1 / kept;
          byOp.set(op, v);
        }
        const run = runs.slice(1).reduce((s, r) => s + r.dur / 1000, 0) / kept;
        const entries = [...byOp].sort((a, b) => b[1].f + b[1].b - a[1].f - a[1].b);
        const fw = entries.reduce((s, [, v]) => s + v.f, 0);
        const bw = entries.reduce((s, [, v]) => s + v.b, 0);
        console.log(
          `\n${o.baseline ? "baseline " : ""}${name} ${which} b${batch}: ${
            run.toFixed(1)
          } ms/run; nodes: forward ${fw.toFixed(1)} ms, backward ${bw.toFixed(1)} ms (×${
            (bw / fw).toFixed(2)
          } forward)`,
        );
        for (const [op, v] of entries.slice(0, 16)) {
          console.log(
            `  ${op.padEnd(22)} ${(v.f + v.b).toFixed(1).padStart(8)} ms  fwd ${
              v.f.toFixed(1).padStart(7)
            }  bwd ${v.b.toFixed(1).padStart(7)}  ${Math.round(v.n)} nodes  ${
              (100 * (v.f + v.b) / (fw + bw)).toFixed(0)
            }%`,
          );
        }
      }
    }
  }
}

if (import.meta.main) {
  const o = parseArgs(Deno.args);
  if (o.profileChild) await profileChild(o, o.profileChild);
  else if (o.profile) await profile(o);
  else await timeCases(o);
}
