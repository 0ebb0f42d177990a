/**
 * `deno task bench`: Lantern (onnxruntime-web, WASM) against PyTorch eager on the same machine, in
 * the same run, on MobileNetV2 and ResNet-50 at 224×224.
 *
 * PyTorch runs in a worker process (`bench/torch_bench.py serve`) that answers one JSON request per
 * line. Lantern and PyTorch repetitions alternate, so both see the same background load, and never
 * overlap: each side gets the whole machine with the same thread count. Each side times its own
 * work; the first timed result of each side is compared, so the table also shows that the two
 * computed the same thing. The two method cases (activation-max, LIME) compare times only.
 *
 *   deno task bench                  # full suite (≤ 10 minutes on 2 cores)
 *   deno task bench --quick          # MobileNetV2 only, fewer repetitions
 *   deno task bench --only fwd+bwd   # cases whose name contains the substring
 *   deno task bench --only lime      # LIME (1000 samples) against as many torch forward passes
 *   deno task bench --only activation  # activation-max steps/s against the same loop in torch
 *   deno task bench --profile        # where Lantern's time goes in MobileNetV2 forward+backward
 *
 * Results go to `out/bench/results.json`; see `bench/README.md`.
 *
 * @module
 */
import "../plugins/mod.ts";
import { buildGradientGraph } from "../graph/autodiff.ts";
import { decodeModel } from "../graph/onnx_io.ts";
import { loadOrt } from "../kernels/backend.ts";
import { decodeNpy, encodeNpy } from "../kernels/npy.ts";
import { createSession, type GraphSession } from "../kernels/session.ts";
import { type Tensor, tensor } from "../kernels/tensor.ts";
import { type OnnxModel, openModel } from "../plugins/model/onnx_model.ts";
import { inputGradients, oneHot, rows } from "../pipeline/gradients.ts";
import type { MethodPlugin, PreprocessPlugin } from "../pipeline/plugin.ts";
import { getPlugin } from "../pipeline/registry.ts";
import type { Batch, Explanation } from "../pipeline/types.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const OUT = `${ROOT}/out/bench`;
const PYTHON = "/usr/bin/python3";
const TORCH_BENCH = `${ROOT}/bench/torch_bench.py`;
const MOBILENET = new URL("../../shared/models/imagenet/mobilenet_v2_float32.onnx", import.meta.url)
  .pathname;
const RESNET50 = `${OUT}/resnet50.onnx`;
const CLASSES = 1000;
const PIXELS = 3 * 224 * 224;
const IG_STEPS = 50;
const IG_BATCH = 16;
/** Activation-max: the channel objective's tensor, timed steps and warm-up steps. */
const AM_LAYER = "610";
const AM_STEPS = 24;
const AM_WARM_STEPS = 2;
/** LIME: samples (LIME's default `num_samples`), warm-up samples and the photo explained. */
const LIME_SAMPLES = 1000;
const LIME_WARM_SAMPLES = 32;
const LIME_IMAGE = `${ROOT}/examples/images/chelsea.png`;
/** Pause between the two sides so neither's idle worker threads still spin when the other starts. */
const HANDOVER_MS = 30;
/**
 * Wall-clock budget of the whole suite: no repetition beyond the first of a case starts if the
 * last one suggests it would end later than this.
 */
const SUITE_BUDGET_MS = 570_000;

type ModelName = "mobilenet_v2" | "resnet50";
type Kind = "forward" | "grad" | "gradcam" | "ig" | "actmax" | "lime";

interface Case {
  model: ModelName;
  kind: Kind;
  batch: number;
  warmup: number;
  reps: number;
}

interface Side {
  /** Median of the timed repetitions. */
  median_ms: number;
  /** Fastest timed repetition (least disturbed by other load on the machine). */
  min_ms: number;
  /** Every timed repetition, in order. */
  times_ms: number[];
  /** The first warm-up call (includes one-time graph building and session creation). */
  first_ms: number;
}

interface CaseResult {
  name: string;
  model: ModelName;
  kind: Kind;
  batch: number;
  warmup: number;
  /** Timed repetitions run (fewer than `planned_reps` when the suite budget ran out). */
  reps: number;
  planned_reps: number;
  lantern: Side;
  torch: Side;
  /** Lantern / PyTorch medians; below 1 means Lantern is faster. */
  ratio: number;
  /**
   * Lantern's first timed result against PyTorch's: max |L − T| / max |T| and ‖L − T‖₂ / ‖T‖₂;
   * null when the shapes differ.
   */
  diff: { max: number; l2: number } | null;
  /** Case-specific numbers (activation-max steps per second, LIME's split). */
  extra?: Record<string, number>;
}

const KIND_LABEL: Record<Kind, string> = {
  forward: "forward",
  grad: "fwd+bwd",
  gradcam: "gradcam",
  ig: `ig${IG_STEPS}`,
  actmax: `activation-max ${AM_LAYER}:0 ${AM_STEPS} steps`,
  lime: `lime${LIME_SAMPLES}`,
};

function caseName(c: Case): string {
  return `${c.model} ${KIND_LABEL[c.kind]} b${c.batch}`;
}

/**
 * Repetitions, chosen so the full suite stays under 10 minutes on 2 cores: one Lantern + PyTorch
 * repetition pair of IG takes about 20 s on MobileNetV2 and 60 s on ResNet-50, and those dominate.
 * {@linkcode SUITE_BUDGET_MS} cuts repetitions short when the machine is slower than that.
 */
function suite(quick: boolean): Case[] {
  const c = (model: ModelName, kind: Kind, batch: number, warmup: number, reps: number): Case => ({
    model,
    kind,
    batch,
    warmup,
    reps,
  });
  if (quick) {
    return [
      c("mobilenet_v2", "forward", 1, 1, 5),
      c("mobilenet_v2", "forward", 16, 1, 1),
      c("mobilenet_v2", "grad", 1, 1, 3),
      c("mobilenet_v2", "grad", 16, 1, 1),
      c("mobilenet_v2", "gradcam", 1, 1, 3),
      c("mobilenet_v2", "ig", 1, 1, 1),
    ];
  }
  return [
    c("mobilenet_v2", "forward", 1, 2, 21),
    c("mobilenet_v2", "forward", 16, 1, 5),
    c("mobilenet_v2", "grad", 1, 2, 15),
    c("mobilenet_v2", "grad", 16, 1, 5),
    c("mobilenet_v2", "gradcam", 1, 2, 15),
    c("mobilenet_v2", "ig", 1, 1, 3),
    c("mobilenet_v2", "actmax", 1, 1, 3),
    c("mobilenet_v2", "lime", 1, 1, 1),
    c("resnet50", "forward", 1, 1, 9),
    c("resnet50", "forward", 16, 1, 3),
    c("resnet50", "grad", 1, 1, 5),
    c("resnet50", "grad", 16, 1, 3),
    c("resnet50", "gradcam", 1, 1, 9),
    c("resnet50", "ig", 1, 1, 3),
  ];
}

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** max |a − b| / max |b| and ‖a − b‖₂ / ‖b‖₂. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; l2: number } {
  let diff = 0, scale = 0, d2 = 0, b2 = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    diff = Math.max(diff, Math.abs(d));
    scale = Math.max(scale, Math.abs(b[i]));
    d2 += d * d;
    b2 += b[i] * b[i];
  }
  return { max: diff / (scale || 1), l2: Math.sqrt(d2 / (b2 || 1)) };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

async function command(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, cwd: ROOT, stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

function loadavg(): string {
  try {
    return Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
  } catch {
    return "n/a";
  }
}

/** Peak RSS since the last {@linkcode resetPeakRss} (VmHWM), or undefined off Linux. */
function peakRss(): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Reset the kernel's peak-RSS counter (Linux ≥ 4.0); false where that is not possible. */
function resetPeakRss(): boolean {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

// onnxruntime-web creates its threaded heap with `new WebAssembly.Memory` on the main thread;
// wrapping the constructor before the runtime loads is the only way to see the heap's size.
const heaps: WebAssembly.Memory[] = [];
function trackWasmHeaps(): void {
  const Native = WebAssembly.Memory;
  class Tracked extends Native {
    constructor(descriptor: WebAssembly.MemoryDescriptor) {
      super(descriptor);
      heaps.push(this);
    }
  }
  (WebAssembly as { Memory: typeof Native }).Memory = Tracked;
}

function wasmHeapBytes(): number | undefined {
  return heaps.length ? Math.max(...heaps.map((m) => m.buffer.byteLength)) : undefined;
}

// ---------------------------------------------------------------------------------------------
// PyTorch worker
// ---------------------------------------------------------------------------------------------

type Reply = Record<string, unknown>;

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
    }
  }
  if (buffer) yield buffer;
}

class TorchWorker {
  #process: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncGenerator<string>;
  hello: Reply = {};

  constructor(threads: number) {
    this.#process = new Deno.Command(PYTHON, {
      args: [TORCH_BENCH, "serve", "--threads", String(threads)],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#process.stdin.getWriter();
    this.#lines = lines(this.#process.stdout);
  }

  async start(): Promise<Reply> {
    this.hello = await this.#read("start");
    return this.hello;
  }

  async #read(what: string): Promise<Reply> {
    for (;;) {
      const next = await this.#lines.next();
      if (next.done) {
        throw new Error(`Cannot ${what} in the PyTorch worker: it exited (see its stderr above)`);
      }
      // Anything else a library prints to stdout is not a reply.
      if (next.value.startsWith("{")) return JSON.parse(next.value) as Reply;
    }
  }

  async request(req: Reply): Promise<Reply> {
    const what = `${req.op} ${req.case ?? req.model ?? ""}`.trim();
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const reply = await this.#read(what);
    if (typeof reply.error === "string") {
      throw new Error(`Cannot ${what} in the PyTorch worker: ${reply.error}`);
    }
    return reply;
  }

  async close(): Promise<void> {
    try {
      await this.#writer.write(new TextEncoder().encode('{"op": "quit"}\n'));
      await this.#writer.close();
    } catch { /* already gone */ }
    await this.#process.status;
  }
}

// ---------------------------------------------------------------------------------------------
// Lantern side
// ---------------------------------------------------------------------------------------------

interface Loaded {
  name: ModelName;
  model: OnnxModel;
  /** The shared `[16,3,224,224]` input written by the PyTorch worker. */
  input: Tensor;
  /** PyTorch's top-1 class of each image, the target of every gradient case. */
  targets: number[];
  /** Lantern's logits of the first image (what the pipeline runner hands to methods). */
  logits1: Tensor;
  openMs: number;
  top1Agree: number;
}

function method(name: string): MethodPlugin<unknown> {
  return getPlugin("method", name) as MethodPlugin<unknown>;
}

/** One Lantern call of a case; returns its result tensor. */
async function lanternOnce(
  m: Loaded,
  c: Case,
  options: { steps?: number; onProgress?: () => void } = {},
): Promise<Tensor> {
  const x = rows(m.input, 0, c.batch);
  switch (c.kind) {
    case "forward":
      return (await m.model.run(x))[m.model.outputName];
    case "grad":
      return (await inputGradients(m.model, x, {
        targets: m.targets.slice(0, c.batch),
        classes: CLASSES,
      })).grad;
    case "gradcam":
    case "ig": {
      const plugin = method(c.kind === "ig" ? "integrated-gradients" : "gradcam");
      const params = c.kind === "ig"
        ? {
          target: [m.targets[0]],
          steps: options.steps ?? IG_STEPS,
          rule: "gausslegendre",
          internal_batch: IG_BATCH,
        }
        : { target: [m.targets[0]] };
      const result: Explanation = await plugin.run(
        {
          model: m.model,
          batch: { tensor: x, names: ["img0"] },
          logits: m.logits1,
          progress: options.onProgress,
        },
        plugin.params.parse(params),
      );
      return result.map;
    }
    default:
      throw new Error(`Cannot run case "${caseName(c)}" as a single call: it is a method case`);
  }
}

/** One Lantern call of `activation-max` or `lime`, for {@linkcode runMethodCase}. */
interface MethodRun {
  /** What the ratio compares: the optimization loop, or LIME's whole call. */
  ms: number;
  extra: Record<string, number>;
}

async function lanternActmax(m: Loaded, steps: number): Promise<MethodRun> {
  const plugin = method("activation-max");
  const e = await plugin.run(
    {
      model: m.model,
      batch: { tensor: tensor(new Float32Array(PIXELS), [1, 3, 224, 224]), names: ["am"] },
      logits: m.logits1,
    },
    plugin.params.parse({ objective: "channel", layer: AM_LAYER, channel: 0, steps, seed: 0 }),
  );
  const sps = (e.info as { steps_per_second: number }).steps_per_second;
  return { ms: (steps * 1000) / sps, extra: { steps_per_second: sps } };
}

interface LimeInput {
  plugin: MethodPlugin<unknown>;
  batch: Batch;
  logits: Tensor;
  target: number;
  path: string;
}

/** Chelsea through the `image` preprocess, as the pipeline runner would hand it to `lime`. */
async function limeInput(m: Loaded): Promise<LimeInput> {
  const pre = getPlugin("preprocess", "image") as PreprocessPlugin<unknown>;
  const batch = await pre.run({ sources: [LIME_IMAGE], model: m.model }, pre.params.parse({}));
  const logits = (await m.model.run(batch.tensor))[m.model.outputName];
  const target = logits.data.indexOf(Math.max(...logits.data));
  const path = `${OUT}/lime_input.npy`;
  await Deno.writeFile(path, encodeNpy(batch.tensor));
  return { plugin: method("lime"), batch, logits, target, path };
}

async function lanternLime(m: Loaded, input: LimeInput, samples: number): Promise<MethodRun> {
  const t = performance.now();
  const e = await input.plugin.run(
    { model: m.model, batch: input.batch, logits: input.logits },
    input.plugin.params.parse({ samples }),
  );
  const ms = performance.now() - t;
  const { segmentation = NaN, forward = NaN, fit = NaN } = e.timings;
  return {
    ms,
    extra: {
      segmentation_ms: segmentation,
      sampling_forward_ms: forward,
      regression_ms: fit,
      other_ms: ms - segmentation - forward - fit,
      segments: (e.info as { segments: number[] }).segments[0],
    },
  };
}

/**
 * A method case: `activation-max` (Lantern's optimization loop against the same loop in torch,
 * `activation_max_steps` in torch_bench.py) or `lime` (Lantern's whole call against torch running
 * the same number of forward passes). No result is compared: the two sides draw different random
 * transforms and perturbations.
 */
async function runMethodCase(
  m: Loaded,
  c: Case,
  torch: TorchWorker,
  deadline: number,
): Promise<CaseResult> {
  const actmax = c.kind === "actmax";
  const lime = actmax ? undefined : await limeInput(m);
  const lanternRun = (warm: boolean) =>
    actmax
      ? lanternActmax(m, warm ? AM_WARM_STEPS : AM_STEPS)
      : lanternLime(m, lime!, warm ? LIME_WARM_SAMPLES : LIME_SAMPLES);
  const torchRun = async (warm: boolean): Promise<MethodRun> => {
    const r = actmax
      ? await torch.request({ op: "actmax", steps: warm ? AM_WARM_STEPS : AM_STEPS, seed: 0 })
      : await torch.request({
        op: "lime",
        input: lime!.path,
        target: lime!.target,
        samples: warm ? LIME_WARM_SAMPLES : LIME_SAMPLES,
        internal_batch: (method("lime").params.parse({}) as { internal_batch: number })
          .internal_batch,
      });
    const extra: Record<string, number> = actmax
      ? { steps_per_second: r.steps_per_second as number }
      : { segmentation_ms: r.segmentation_ms as number, segments: r.segments as number };
    return { ms: r.ms as number, extra };
  };
  let lanternFirst = NaN, torchFirst = NaN;
  for (let i = 0; i < c.warmup; i++) {
    const t = performance.now();
    await lanternRun(true);
    if (i === 0) lanternFirst = performance.now() - t;
    await delay(HANDOVER_MS);
    const r = await torchRun(true);
    if (i === 0) torchFirst = r.ms;
    await delay(HANDOVER_MS);
  }
  const lanternRuns: MethodRun[] = [], torchRuns: MethodRun[] = [];
  let pair = 0;
  for (let i = 0; i < c.reps; i++) {
    if (i > 0 && performance.now() + pair > deadline) break;
    const pairStart = performance.now();
    lanternRuns.push(await lanternRun(false));
    await delay(HANDOVER_MS);
    torchRuns.push(await torchRun(false));
    await delay(HANDOVER_MS);
    pair = performance.now() - pairStart;
  }
  if (lime) await Deno.remove(lime.path);
  const side = (runs: MethodRun[], first: number): Side => {
    const times = runs.map((r) => r.ms);
    return {
      median_ms: median(times),
      min_ms: Math.min(...times),
      times_ms: times,
      first_ms: first,
    };
  };
  const lantern = side(lanternRuns, lanternFirst);
  const torchSide = side(torchRuns, torchFirst);
  const medians = (runs: MethodRun[], prefix: string) =>
    Object.fromEntries(
      Object.keys(runs[0].extra).map((
        k,
      ) => [`${prefix}_${k}`, median(runs.map((r) => r.extra[k]))]),
    );
  return {
    name: caseName(c),
    model: c.model,
    kind: c.kind,
    batch: c.batch,
    warmup: c.warmup,
    reps: lanternRuns.length,
    planned_reps: c.reps,
    lantern,
    torch: torchSide,
    ratio: lantern.median_ms / torchSide.median_ms,
    diff: null,
    extra: { ...medians(lanternRuns, "lantern"), ...medians(torchRuns, "torch") },
  };
}

async function loadModel(name: ModelName, torch: TorchWorker): Promise<Loaded> {
  const path = name === "mobilenet_v2" ? MOBILENET : RESNET50;
  if (name === "resnet50") {
    try {
      Deno.statSync(RESNET50);
    } catch {
      console.log(`exporting ResNet-50 (random weights, seed 0) to ${RESNET50} …`);
      const out = await new Deno.Command(PYTHON, {
        args: [TORCH_BENCH, "export", RESNET50],
        cwd: ROOT,
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`Cannot export ResNet-50 to "${RESNET50}": torch failed`);
    }
  }
  const inputPath = `${OUT}/${name}_input.npy`;
  const reply = await torch.request({ op: "load", model: name, onnx: path, input: inputPath });
  const targets = reply.targets as number[];
  const input = decodeNpy(Deno.readFileSync(inputPath), inputPath);
  const t0 = performance.now();
  const model = await openModel(Deno.readFileSync(path), { name, backend: "wasm" });
  const openMs = performance.now() - t0;
  const logits = (await model.run(input))[model.outputName];
  let agree = 0;
  for (let i = 0; i < input.dims[0]; i++) {
    const row = logits.data.subarray(i * CLASSES, (i + 1) * CLASSES);
    if (row.indexOf(Math.max(...row)) === targets[i]) agree++;
  }
  const logits1 = tensor(logits.data.slice(0, CLASSES), [1, CLASSES]);
  return { name, model, input, targets, logits1, openMs, top1Agree: agree };
}

interface IgMemory {
  lantern_peak_rss_bytes?: number;
  lantern_peak_rss_reset: boolean;
  lantern_sampled_rss_max_bytes: number;
  lantern_wasm_heap_bytes?: number;
  torch_peak_rss_bytes?: number;
  torch_peak_rss_reset: boolean;
}

async function runCase(
  m: Loaded,
  c: Case,
  torch: TorchWorker,
  deadline: number,
): Promise<{ result: CaseResult; memory?: IgMemory }> {
  if (c.kind === "actmax" || c.kind === "lime") {
    return { result: await runMethodCase(m, c, torch, deadline) };
  }
  const name = caseName(c);
  const req = {
    op: "run",
    model: c.model,
    case: c.kind,
    batch: c.batch,
    target: m.targets.slice(0, c.batch),
    steps: IG_STEPS,
    internal_batch: IG_BATCH,
  };
  // An IG warm-up with 16 + 2 points runs both chunk shapes of the timed 50-point runs.
  const warmSteps = IG_BATCH + (IG_STEPS % IG_BATCH);
  const lanternTimes: number[] = [], torchTimes: number[] = [];
  let lanternFirst = NaN, torchFirst = NaN;
  for (let i = 0; i < c.warmup; i++) {
    const t = performance.now();
    await lanternOnce(m, c, { steps: warmSteps });
    if (i === 0) lanternFirst = performance.now() - t;
    await delay(HANDOVER_MS);
    const r = await torch.request({ ...req, steps: c.kind === "ig" ? warmSteps : IG_STEPS });
    if (i === 0) torchFirst = r.ms as number;
    await delay(HANDOVER_MS);
  }
  const ig = c.kind === "ig";
  const savePath = `${OUT}/${c.model}_${c.kind}_b${c.batch}.torch.npy`;
  let sampled = 0;
  const sample = () => sampled = Math.max(sampled, Deno.memoryUsage().rss);
  const memory: IgMemory = {
    lantern_peak_rss_reset: false,
    lantern_sampled_rss_max_bytes: 0,
    torch_peak_rss_reset: false,
  };
  let lanternResult: Tensor | undefined;
  let pair = 0;
  for (let i = 0; i < c.reps; i++) {
    if (i > 0 && performance.now() + pair > deadline) break;
    const pairStart = performance.now();
    let timer: ReturnType<typeof setInterval> | undefined;
    if (ig) {
      memory.lantern_peak_rss_reset = resetPeakRss();
      sample();
      timer = setInterval(sample, 25);
    }
    const t = performance.now();
    const out = await lanternOnce(m, c, { onProgress: ig ? sample : undefined });
    lanternTimes.push(performance.now() - t);
    if (ig) {
      clearInterval(timer);
      sample();
      memory.lantern_peak_rss_bytes = Math.max(memory.lantern_peak_rss_bytes ?? 0, peakRss() ?? 0);
    }
    lanternResult ??= out;
    await delay(HANDOVER_MS);
    const r = await torch.request({
      ...req,
      save: i === 0 ? savePath : undefined,
      memory: ig,
    });
    torchTimes.push(r.ms as number);
    if (ig) {
      memory.torch_peak_rss_bytes = Math.max(
        memory.torch_peak_rss_bytes ?? 0,
        r.peak_rss as number,
      );
      memory.torch_peak_rss_reset = Boolean(r.peak_rss_reset);
    }
    await delay(HANDOVER_MS);
    pair = performance.now() - pairStart;
  }
  const reference = decodeNpy(Deno.readFileSync(savePath), savePath);
  await Deno.remove(savePath);
  const diff = lanternResult && lanternResult.dims.join() === reference.dims.join()
    ? relDiff(lanternResult.data, reference.data)
    : null;
  const lantern: Side = {
    median_ms: median(lanternTimes),
    min_ms: Math.min(...lanternTimes),
    times_ms: lanternTimes,
    first_ms: lanternFirst,
  };
  const torchSide: Side = {
    median_ms: median(torchTimes),
    min_ms: Math.min(...torchTimes),
    times_ms: torchTimes,
    first_ms: torchFirst,
  };
  const result: CaseResult = {
    name,
    model: c.model,
    kind: c.kind,
    batch: c.batch,
    warmup: c.warmup,
    reps: lanternTimes.length,
    planned_reps: c.reps,
    lantern,
    torch: torchSide,
    ratio: lantern.median_ms / torchSide.median_ms,
    diff,
  };
  if (!ig) return { result };
  memory.lantern_sampled_rss_max_bytes = sampled;
  memory.lantern_wasm_heap_bytes = wasmHeapBytes();
  return { result, memory };
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

function formatMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

function table(results: readonly CaseResult[]): string {
  const head = [
    "case",
    "reps",
    "Lantern ms",
    "PyTorch ms",
    "ratio",
    "Lantern min",
    "PyTorch min",
    "rel L2 diff",
  ];
  const body = results.map((r) => [
    r.name,
    r.reps === r.planned_reps ? String(r.reps) : `${r.reps}/${r.planned_reps}`,
    formatMs(r.lantern.median_ms),
    formatMs(r.torch.median_ms),
    r.ratio.toFixed(2),
    formatMs(r.lantern.min_ms),
    formatMs(r.torch.min_ms),
    r.diff
      ? r.diff.l2.toExponential(1)
      : r.kind === "actmax" || r.kind === "lime"
      ? "n/a"
      : "shape differs",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const fmt = (row: string[]) =>
    row.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join("  ");
  return [fmt(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(fmt)].join("\n");
}

/** The extra numbers of the method cases, one line each. */
function methodNotes(results: readonly CaseResult[]): string[] {
  const notes: string[] = [];
  for (const r of results) {
    const x = r.extra;
    if (!x) continue;
    if (r.kind === "actmax") {
      notes.push(
        `${r.name} (after ${AM_WARM_STEPS} warm-up steps): Lantern ${
          x.lantern_steps_per_second.toFixed(1)
        } steps/s, PyTorch ${x.torch_steps_per_second.toFixed(1)} steps/s; ratio ${
          r.ratio.toFixed(2)
        } (Lantern time / PyTorch time)`,
      );
    } else if (r.kind === "lime") {
      const fwd = x.lantern_sampling_forward_ms;
      notes.push(
        `${r.name}: Lantern ${formatMs(r.lantern.median_ms)} ms = segmentation ${
          formatMs(x.lantern_segmentation_ms)
        } + sampling+forward ${formatMs(fwd)} + regression ${
          formatMs(x.lantern_regression_ms)
        } + other ${formatMs(x.lantern_other_ms)} ms (${x.lantern_segments} superpixels); ` +
          `PyTorch ${LIME_SAMPLES} forward passes ${formatMs(r.torch.median_ms)} ms ` +
          `(skimage quickshift ${formatMs(x.torch_segmentation_ms)} ms, ${x.torch_segments} ` +
          `superpixels, not in the ratio); ratio ${r.ratio.toFixed(2)} whole call, ${
            (fwd / r.torch.median_ms).toFixed(2)
          } sampling+forward only`,
      );
    }
  }
  return notes;
}

// ---------------------------------------------------------------------------------------------
// Profile: where Lantern's forward+backward time goes (MobileNetV2)
// ---------------------------------------------------------------------------------------------

const PROFILE_MARK = "@@lantern-bench ";

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  ts: number;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
}

/** The op type, with the kernel kind for convolutions: `FusedConv dw3×3`, `ConvTranspose 1×1`. */
function opLabel(e: ProfileEvent): string {
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

async function profile(): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  only?: string;
  profile: boolean;
  profileChild?: number;
}

function parseArgs(args: readonly string[]): Options {
  const options: Options = { quick: false, profile: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--quick") options.quick = true;
    else if (a === "--profile") options.profile = true;
    else if (a === "--only" || a === "--profile-child") {
      const v = args[++i];
      if (v === undefined) throw new Error(`Cannot parse arguments: ${a} needs a value`);
      if (a === "--only") options.only = v;
      else options.profileChild = Number(v);
    } else if (a.startsWith("--only=")) options.only = a.slice("--only=".length);
    else {
      throw new Error(
        `Cannot parse arguments: unknown option "${a}", expected --quick, --only <case>, --profile`,
      );
    }
  }
  return options;
}

async function bench(options: Options): Promise<void> {
  const started = performance.now();
  const threads = navigator.hardwareConcurrency;
  const cases = suite(options.quick).filter((c) =>
    !options.only || caseName(c).includes(options.only)
  );
  if (!cases.length) {
    throw new Error(`Cannot run bench: no case name contains "${options.only}"`);
  }
  await Deno.mkdir(OUT, { recursive: true });
  const commit = await command("git", ["rev-parse", "HEAD"]);
  const dirty = (await command("git", ["status", "--porcelain", "--untracked-files=no"])) !== "";
  const cpu = (() => {
    try {
      return /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "";
    } catch {
      return "";
    }
  })();
  const loadStart = loadavg();
  const torch = new TorchWorker(threads);
  const hello = await torch.start();
  console.log(
    `Lantern ${commit.slice(0, 12)}${dirty ? " (uncommitted changes)" : ""} · ${
      new Date().toISOString()
    }\nhost: ${threads} cores (${cpu}), load ${loadStart}\nDeno ${Deno.version.deno}, ` +
      `torch ${hello.torch} (threads ${hello.threads}), WASM threads ${threads}`,
  );
  const results: CaseResult[] = [];
  const memory: Record<string, IgMemory> = {};
  const setup: Record<
    string,
    { lantern_open_ms: number; top1_agree: string; wasm_heap_bytes_after?: number }
  > = {};
  let ortVersion = "";
  try {
    for (const name of [...new Set(cases.map((c) => c.model))]) {
      const loaded = await loadModel(name, torch);
      setup[name] = {
        lantern_open_ms: loaded.openMs,
        top1_agree: `${loaded.top1Agree}/${loaded.input.dims[0]}`,
      };
      ortVersion ||= (await loadOrt(loaded.model.backend)).env.versions?.web ?? "";
      console.log(
        `${name}: opened in ${loaded.openMs.toFixed(0)} ms; Lantern's top-1 matches torch on ${
          setup[name].top1_agree
        } images`,
      );
      for (const c of cases.filter((c) => c.model === name)) {
        const t = performance.now();
        const { result, memory: mem } = await runCase(
          loaded,
          c,
          torch,
          started + SUITE_BUDGET_MS,
        );
        results.push(result);
        if (mem) memory[result.name] = mem;
        console.log(
          `  ${result.name}: ${c.warmup} warm-up + ${result.reps} reps in ${
            ((performance.now() - t) / 1000).toFixed(0)
          } s — Lantern ${formatMs(result.lantern.median_ms)} ms, PyTorch ${
            formatMs(result.torch.median_ms)
          } ms`,
        );
      }
      setup[name].wasm_heap_bytes_after = wasmHeapBytes();
      await loaded.model.dispose();
    }
  } finally {
    await torch.close();
  }
  const wall = (performance.now() - started) / 1000;
  const loadEnd = loadavg();
  console.log(`\n${table(results)}\n`);
  console.log(
    "ms: median after warm-up; min: fastest repetition. ratio = Lantern / PyTorch medians\n" +
      "(< 1: Lantern faster). rel L2 diff = ‖Lantern − PyTorch‖₂ / ‖PyTorch‖₂ of the first timed\n" +
      "result; float32 gradients of ReLU nets flip masks near 0 and 6, so torch float32 vs float64\n" +
      "alone differ by up to ~6e-3 on these inputs.",
  );
  for (const line of methodNotes(results)) console.log(line);
  for (const [name, m] of Object.entries(memory)) {
    console.log(
      `peak RSS during ${name}: Lantern ${mib(m.lantern_peak_rss_bytes)} (VmHWM${
        m.lantern_peak_rss_reset ? ", reset before IG" : ", process lifetime"
      }; sampled Deno.memoryUsage().rss max ${mib(m.lantern_sampled_rss_max_bytes)}; WASM heap ${
        mib(m.lantern_wasm_heap_bytes)
      }), PyTorch ${mib(m.torch_peak_rss_bytes)} (ru_maxrss${
        m.torch_peak_rss_reset ? ", reset before IG" : ", process lifetime"
      })`,
    );
  }
  console.log(`wall ${wall.toFixed(0)} s; load average ${loadStart} → ${loadEnd}`);
  const path = `${OUT}/results.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify(
      {
        commit,
        uncommitted_changes: dirty,
        date: new Date().toISOString(),
        host: {
          cores: threads,
          cpu,
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
        threads: { lantern_wasm: threads, torch: hello.threads },
        options: { quick: options.quick, only: options.only ?? null },
        wasm_reserve_mb: Deno.env.get("LANTERN_WASM_RESERVE_MB") ?? null,
        setup,
        cases: results,
        ig_memory: memory,
        wall_s: wall,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`wrote ${path}`);
}

if (import.meta.main) {
  try {
    const options = parseArgs(Deno.args);
    trackWasmHeaps();
    if (options.profileChild !== undefined) await profileChild(options.profileChild);
    else if (options.profile) await profile();
    else await bench(options);
  } catch (e) {
    console.error(`error: ${(e as Error).message ?? e}`);
    Deno.exit(1);
  }
}
