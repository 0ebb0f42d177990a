/**
 * `deno task bench --profile`: where Lantern's MobileNetV2 forward+backward time goes, by op, with
 * onnxruntime's profiler, at 1 and all WASM threads (each in a child process of this module).
 *
 * @module
 */
import "../plugins/mod.ts";
import { buildGradientGraph } from "../graph/autodiff.ts";
import { decodeModel } from "../graph/onnx_io.ts";
import { loadOrt } from "../kernels/backend.ts";
import { createSession, type GraphSession } from "../kernels/session.ts";
import { type Tensor, tensor } from "../kernels/tensor.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { oneHot } from "../pipeline/gradients.ts";
import { CLASSES, formatMs, median, mib, MOBILENET, OUT, PIXELS, ROOT } from "./common.ts";

const PROFILE_MARK = "@@lantern-bench ";

/** One event of onnxruntime's profiler (`enableProfiling`). */
export interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  ts: number;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
}

/** The op type, with the kernel kind for convolutions: `FusedConv dw3×3`, `ConvTranspose 1×1`. */
export function opLabel(e: ProfileEvent): string {
  const op = e.args?.op_name ?? "?";
  if (!/Conv/.test(op)) return op;
  const w = Object.values(e.args?.input_type_shape?.[1] ?? {})[0];
  if (!w || w.length !== 4) return op;
  // Conv weights are [out, in/group, k, k], ConvTranspose weights [in, out/group, k, k].
  const depthwise = w[1] === 1 && w[0] > 1;
  return `${op} ${depthwise ? "dw" : ""}${w[2]}×${w[3]}`;
}

function countOps(bytes: Uint8Array): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of decodeModel(bytes).graph!.node) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
  return counts;
}

async function timeSession(
  session: GraphSession,
  feeds: Record<string, Tensor>,
  fetches: readonly string[],
  reps: number,
): Promise<number> {
  await session.run(feeds, fetches);
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await session.run(feeds, fetches);
    times.push(performance.now() - t);
  }
  return median(times);
}

/** Runs in a child process with `threads` WASM threads; prints marked JSON lines. */
async function profileChild(threads: number): Promise<void> {
  // hardwareThreads() reads this; overriding it is how a child picks its WASM thread count.
  Object.defineProperty(navigator, "hardwareConcurrency", { value: threads, configurable: true });
  const emit = (what: string, value: unknown) =>
    console.log(PROFILE_MARK + JSON.stringify({ what, value }));
  const bytes = Deno.readFileSync(MOBILENET);
  const model = await openModel(bytes, { name: "mobilenet_v2", backend: "wasm" });
  let t = performance.now();
  const graph = buildGradientGraph(model.proto, { of: model.outputName, wrt: [model.inputName] });
  const buildMs = performance.now() - t;
  const forwardNodes = new Set(model.proto.graph!.node.map((n) => n.name));
  const gradNodes = decodeModel(graph.bytes).graph!.node;
  const backwardOps: Record<string, number> = {};
  for (const n of gradNodes) {
    if (!forwardNodes.has(n.name)) backwardOps[n.opType] = (backwardOps[n.opType] ?? 0) + 1;
  }
  t = performance.now();
  const fwd = await createSession(bytes, model.backend);
  const fwdCreateMs = performance.now() - t;
  t = performance.now();
  const grad = await createSession(graph.bytes, model.backend);
  const gradCreateMs = performance.now() - t;
  emit("graph", {
    threads: model.backend.threads,
    build_ms: buildMs,
    forward_bytes: bytes.length,
    gradient_bytes: graph.bytes.length,
    forward_ops: countOps(bytes),
    gradient_ops: countOps(graph.bytes),
    backward_ops: backwardOps,
    session_create_ms: { forward: fwdCreateMs, gradient: gradCreateMs },
    forward_node_names: [...forwardNodes],
  });
  // Dense kernels take the same time whatever the values; a fixed pattern keeps this self-contained.
  const input = new Float32Array(16 * PIXELS);
  for (let i = 0; i < input.length; i++) input[i] = Math.sin(i * 12.9898) * 1.5;
  for (const b of [1, 16]) {
    const x = tensor(input.subarray(0, b * PIXELS), [b, 3, 224, 224]);
    const seed = oneHot(new Array(b).fill(285), CLASSES);
    const reps = b === 1 ? 9 : 3;
    const feeds = { [model.inputName]: x, [graph.seed]: seed };
    emit("timing", {
      batch: b,
      reps,
      forward_session_ms: await timeSession(
        fwd,
        { [model.inputName]: x },
        [model.outputName],
        reps,
      ),
      gradient_session_ms: await timeSession(grad, feeds, [...graph.grads, model.outputName], reps),
      gradient_session_logits_only_ms: await timeSession(grad, feeds, [model.outputName], reps),
    });
  }
  await fwd.release();
  await grad.release();
  // onnxruntime's own per-node profile: printed to stdout as one JSON array per session.
  const ort = await loadOrt(model.backend);
  for (const [label, graphBytes] of [["forward", bytes], ["gradient", graph.bytes]] as const) {
    for (const b of [1, 16]) {
      const session = await ort.InferenceSession.create(graphBytes, {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
        enableProfiling: true,
      });
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
        [model.inputName]: new ort.Tensor("float32", input.slice(0, b * PIXELS), [b, 3, 224, 224]),
      };
      if (label === "gradient") {
        const seed = oneHot(new Array(b).fill(285), CLASSES);
        feeds[graph.seed] = new ort.Tensor("float32", seed.data, [b, CLASSES]);
      }
      const runs = b === 1 ? 4 : 2;
      for (let i = 0; i < runs; i++) await session.run(feeds);
      emit("profile", { graph: label, batch: b, runs });
      session.endProfiling();
      emit("profile-end", {});
      await session.release();
    }
  }
  await model.dispose();
}

interface ChildReport {
  graph?: {
    threads: number;
    build_ms: number;
    forward_bytes: number;
    gradient_bytes: number;
    forward_ops: Record<string, number>;
    gradient_ops: Record<string, number>;
    backward_ops: Record<string, number>;
    session_create_ms: { forward: number; gradient: number };
    forward_node_names: string[];
  };
  timing: {
    batch: number;
    reps: number;
    forward_session_ms: number;
    gradient_session_ms: number;
    gradient_session_logits_only_ms: number;
  }[];
  /** Per (graph, batch): ms per run by op type, split into forward and backward nodes. */
  profiles: {
    graph: string;
    batch: number;
    runs: number;
    ms_per_run: number;
    by_op: Record<string, { forward: number; backward: number }>;
  }[];
}

function parseChild(stdout: string): ChildReport {
  const report: ChildReport = { timing: [], profiles: [] };
  let current: { graph: string; batch: number; runs: number } | undefined;
  let events: ProfileEvent[] = [];
  for (const line of stdout.split("\n")) {
    if (line.startsWith(PROFILE_MARK)) {
      const { what, value } = JSON.parse(line.slice(PROFILE_MARK.length));
      if (what === "graph") report.graph = value;
      else if (what === "timing") report.timing.push(value);
      else if (what === "profile") {
        current = value;
        events = [];
      } else if (what === "profile-end" && current) {
        report.profiles.push(summarizeProfile(current, events, report.graph?.forward_node_names));
        current = undefined;
      }
    } else if (current && line.startsWith("{")) {
      try {
        events.push(JSON.parse(line.replace(/,\s*$/, "")) as ProfileEvent);
      } catch { /* not an event line */ }
    }
  }
  return report;
}

/**
 * Node time per run by op type, the first (warm-up) run left out. onnxruntime names a fused node
 * after the first node it absorbed, so a name from the forward graph marks a forward node.
 */
function summarizeProfile(
  run: { graph: string; batch: number; runs: number },
  events: readonly ProfileEvent[],
  forwardNames: readonly string[] = [],
): ChildReport["profiles"][number] {
  const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run")
    .sort((a, b) => a.ts - b.ts);
  const from = runs.length > 1 ? runs[1].ts : 0;
  const kept = Math.max(1, runs.length - 1);
  const forward = new Set(forwardNames);
  const byOp: Record<string, { forward: number; backward: number }> = {};
  let total = 0;
  for (const e of events) {
    if (e.cat !== "Node" || e.ts < from || !e.name.endsWith("_kernel_time")) continue;
    const node = e.name.slice(0, -"_kernel_time".length);
    const op = opLabel(e);
    const part = forward.has(node) ? "forward" : "backward";
    byOp[op] ??= { forward: 0, backward: 0 };
    byOp[op][part] += e.dur / 1000 / kept;
  }
  for (const r of runs.slice(1)) total += r.dur / 1000 / kept;
  return { ...run, runs: kept, ms_per_run: total, by_op: byOp };
}

/** Profile MobileNetV2 forward+backward at 1 and all threads and print where the time goes. */
export async function profile(): Promise<void> {
  const reports: ChildReport[] = [];
  const maxThreads = navigator.hardwareConcurrency;
  for (const threads of [...new Set([1, maxThreads])]) {
    console.log(`profiling MobileNetV2 forward+backward with ${threads} WASM thread(s) …`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-sys",
        `--config=${ROOT}/deno.json`,
        import.meta.url,
        "--profile-child",
        String(threads),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`Cannot profile with ${threads} thread(s): the child failed`);
    reports.push(parseChild(new TextDecoder().decode(out.stdout)));
  }
  const g = reports[0].graph!;
  const opList = (ops: Record<string, number>) =>
    Object.entries(ops).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ");
  const sum = (ops: Record<string, number>) => Object.values(ops).reduce((a, b) => a + b, 0);
  console.log(`\nMobileNetV2 graphs (Lantern autodiff, relu: standard, wrt input):`);
  console.log(
    `  forward:  ${sum(g.forward_ops)} nodes, ${mib(g.forward_bytes)}: ${opList(g.forward_ops)}`,
  );
  console.log(
    `  gradient: ${sum(g.gradient_ops)} nodes, ${mib(g.gradient_bytes)}: ${opList(g.gradient_ops)}`,
  );
  console.log(`  of which backward: ${sum(g.backward_ops)} nodes: ${opList(g.backward_ops)}`);
  console.log(`  buildGradientGraph: ${g.build_ms.toFixed(0)} ms`);
  for (const r of reports) {
    const rg = r.graph!;
    console.log(
      `\n${rg.threads} thread(s): session creation forward ${
        rg.session_create_ms.forward.toFixed(0)
      } ms, gradient ${rg.session_create_ms.gradient.toFixed(0)} ms`,
    );
    for (const t of r.timing) {
      console.log(
        `  b${t.batch} (median of ${t.reps}): forward session ${
          formatMs(t.forward_session_ms)
        } ms,` +
          ` gradient session ${formatMs(t.gradient_session_ms)} ms (×${
            (t.gradient_session_ms / t.forward_session_ms).toFixed(2)
          }), gradient session fetching logits only ${
            formatMs(t.gradient_session_logits_only_ms)
          } ms`,
      );
    }
    for (const p of r.profiles) {
      const rowsOf = Object.entries(p.by_op)
        .map(([op, v]) => ({ op, ...v, total: v.forward + v.backward }))
        .sort((a, b) => b.total - a.total);
      const nodeSum = rowsOf.reduce((s, x) => s + x.total, 0);
      console.log(
        `  onnxruntime profile, ${p.graph} graph b${p.batch} (${p.runs} runs): ${
          formatMs(p.ms_per_run)
        } ms/run, nodes ${formatMs(nodeSum)} ms; by op (forward + backward nodes):`,
      );
      for (const x of rowsOf.slice(0, 10)) {
        console.log(
          `    ${x.op.padEnd(20)} ${formatMs(x.total).padStart(7)} ms  (${formatMs(x.forward)} + ${
            formatMs(x.backward)
          })  ${(100 * x.total / nodeSum).toFixed(0)}%`,
        );
      }
    }
  }
  const path = `${OUT}/profile.json`;
  await Deno.mkdir(OUT, { recursive: true });
  await Deno.writeTextFile(
    path,
    JSON.stringify(
      reports.map((r) => ({ ...r, graph: { ...r.graph, forward_node_names: undefined } })),
      null,
      2,
    ) + "\n",
  );
  console.log(`\nwrote ${path}`);
}

if (import.meta.main) {
  try {
    await profileChild(Number(Deno.args[Deno.args.indexOf("--profile-child") + 1]));
  } catch (e) {
    console.error(`error: ${(e as Error).message ?? e}`);
    Deno.exit(1);
  }
}
