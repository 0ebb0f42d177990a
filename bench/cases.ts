/**
 * The bench cases and how each side runs one: Lantern on each engine (WASM, native onnxruntime)
 * through the same plugins the pipeline runner calls, and PyTorch through `torch_bench.py`.
 *
 * @module
 */
import "../plugins/mod.ts";
import { decodeNpy, encodeNpy } from "../kernels/npy.ts";
import { type Tensor, tensor } from "../kernels/tensor.ts";
import { type OnnxModel, openModel } from "../plugins/model/onnx_model.ts";
import { inputGradients, rows } from "../pipeline/gradients.ts";
import type { MethodPlugin, PreprocessPlugin } from "../pipeline/plugin.ts";
import { getPlugin } from "../pipeline/registry.ts";
import type { Batch } from "../pipeline/types.ts";
import { CLASSES, MOBILENET, OUT, PIXELS, PYTHON, RESNET50, ROOT, TORCH_BENCH } from "./common.ts";
import type { Reply, TorchWorker } from "./torch_worker.ts";

/** The two models of the suite. */
export type ModelName = "mobilenet_v2" | "resnet50";
/** What a case times. */
export type Kind =
  | "forward"
  | "grad"
  | "gradcam"
  | "ig"
  | "smoothgrad"
  | "occlusion"
  | "actmax"
  | "lime";
/** A Lantern execution engine the bench compares. */
export type Engine = "wasm" | "native";

/** One row of the table. */
export interface Case {
  model: ModelName;
  kind: Kind;
  batch: number;
  warmup: number;
  reps: number;
}

/** IG: Gauss–Legendre points and points per forward+backward pass, on both sides. */
export const IG_STEPS = 50;
/** Path points (IG) and noisy samples (SmoothGrad) per pass, on both sides. */
export const INTERNAL_BATCH = 16;
/** SmoothGrad: noisy samples and noise level (fraction of the input's range). */
export const SG_SAMPLES = 50;
const SG_SIGMA = 0.15;
/** Occlusion: window side and stride (13 × 13 = 169 occluded copies of a 224 × 224 input). */
export const OCC_WINDOW = 32;
const OCC_STRIDE = 16;
/** Activation-max: the channel objective's tensor, timed steps and warm-up steps. */
export const AM_LAYER = "610";
export const AM_STEPS = 24;
export const AM_WARM_STEPS = 2;
/** LIME: samples (LIME's default `num_samples`), warm-up samples and the photo explained. */
export const LIME_SAMPLES = 1000;
const LIME_WARM_SAMPLES = 32;
const LIME_IMAGE = `${ROOT}/examples/images/chelsea.png`;

const KIND_LABEL: Record<Kind, string> = {
  forward: "forward",
  grad: "fwd+bwd",
  gradcam: "gradcam",
  ig: `ig${IG_STEPS}`,
  smoothgrad: `smoothgrad${SG_SAMPLES}`,
  occlusion: `occlusion${OCC_WINDOW}/${OCC_STRIDE}`,
  actmax: `activation-max ${AM_LAYER}:0 ${AM_STEPS} steps`,
  lime: `lime${LIME_SAMPLES}`,
};

/** The case's name in the table, e.g. `resnet50 gradcam b16`. */
export function caseName(c: Case): string {
  return `${c.model} ${KIND_LABEL[c.kind]} b${c.batch}`;
}

/** Whether the two sides compute the same numbers (so the table compares results too). */
export function comparable(kind: Kind): boolean {
  return kind !== "smoothgrad" && kind !== "actmax" && kind !== "lime";
}

/**
 * The suite. Repetitions are chosen so the whole run stays under 15 minutes on 2 cores; the
 * slow cases (IG, SmoothGrad: 50 forward+backward passes each) get few, and the suite budget cuts
 * repetitions short when the machine is slower than planned.
 */
export function suite(quick: boolean): Case[] {
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
    c("mobilenet_v2", "forward", 1, 2, 15),
    c("mobilenet_v2", "forward", 16, 1, 3),
    c("mobilenet_v2", "grad", 1, 2, 11),
    c("mobilenet_v2", "grad", 16, 1, 3),
    c("mobilenet_v2", "gradcam", 1, 2, 11),
    c("mobilenet_v2", "gradcam", 16, 1, 3),
    c("mobilenet_v2", "ig", 1, 1, 3),
    c("mobilenet_v2", "smoothgrad", 1, 1, 3),
    c("mobilenet_v2", "occlusion", 1, 1, 3),
    c("mobilenet_v2", "actmax", 1, 1, 3),
    c("mobilenet_v2", "lime", 1, 1, 1),
    c("resnet50", "forward", 1, 1, 7),
    c("resnet50", "forward", 16, 1, 2),
    c("resnet50", "grad", 1, 1, 5),
    c("resnet50", "grad", 16, 1, 2),
    c("resnet50", "gradcam", 1, 1, 5),
    c("resnet50", "gradcam", 16, 1, 2),
    c("resnet50", "ig", 1, 1, 2),
    c("resnet50", "smoothgrad", 1, 1, 2),
    c("resnet50", "occlusion", 1, 1, 2),
  ];
}

/** A model loaded on every available engine, with the shared inputs and PyTorch's targets. */
export interface Loaded {
  name: ModelName;
  models: Partial<Record<Engine, OnnxModel>>;
  /** Why an engine is missing. */
  missing: Partial<Record<Engine, string>>;
  /** The shared `[16,3,224,224]` input written by the PyTorch worker. */
  input: Tensor;
  /** PyTorch's top-1 class of each image, the target of every gradient case. */
  targets: number[];
  /** Each engine's logits of the 16 images (what the pipeline runner hands to methods). */
  logits: Partial<Record<Engine, Tensor>>;
  openMs: Partial<Record<Engine, number>>;
  /** Images whose top-1 class agrees with PyTorch's, per engine. */
  top1Agree: Partial<Record<Engine, number>>;
}

/** Export ResNet-50 if needed, load `name` in the worker and on each engine. */
export async function loadModel(
  name: ModelName,
  torch: TorchWorker,
  engines: readonly Engine[],
): Promise<Loaded> {
  const path = name === "mobilenet_v2" ? MOBILENET : RESNET50;
  if (name === "resnet50") await exportResnet50();
  const inputPath = `${OUT}/${name}_input.npy`;
  const reply = await torch.request({ op: "load", model: name, onnx: path, input: inputPath });
  const targets = reply.targets as number[];
  const input = decodeNpy(Deno.readFileSync(inputPath), inputPath);
  const loaded: Loaded = {
    name,
    models: {},
    missing: {},
    input,
    targets,
    logits: {},
    openMs: {},
    top1Agree: {},
  };
  const bytes = Deno.readFileSync(path);
  for (const engine of engines) {
    const t0 = performance.now();
    let model: OnnxModel;
    try {
      model = await openModel(bytes, { name, backend: engine });
    } catch (e) {
      loaded.missing[engine] = (e as Error).message;
      continue;
    }
    loaded.openMs[engine] = performance.now() - t0;
    loaded.models[engine] = model;
    const logits = (await model.run(input))[model.outputName];
    loaded.logits[engine] = logits;
    let agree = 0;
    for (let i = 0; i < input.dims[0]; i++) {
      const row = logits.data.subarray(i * CLASSES, (i + 1) * CLASSES);
      if (row.indexOf(Math.max(...row)) === targets[i]) agree++;
    }
    loaded.top1Agree[engine] = agree;
  }
  if (!loaded.models.wasm) throw new Error(`Cannot open ${name} on WASM: ${loaded.missing.wasm}`);
  return loaded;
}

/** Export the seed-0 ResNet-50 to `RESNET50` with `torch_bench.py export`, unless it is there. */
export async function exportResnet50(): Promise<void> {
  try {
    Deno.statSync(RESNET50);
    return;
  } catch { /* not yet exported */ }
  console.log(`exporting ResNet-50 (random weights, seed 0) to ${RESNET50} …`);
  const out = await new Deno.Command(PYTHON, {
    args: [TORCH_BENCH, "export", RESNET50],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`Cannot export ResNet-50 to "${RESNET50}": torch failed`);
}

/** One timed call of one side. */
export interface RunOut {
  /** What the ratio compares (the whole call, or the optimization loop for activation-max). */
  ms: number;
  /** The call's result, when the case compares results. */
  result?: Tensor;
  /** Case-specific numbers. */
  extra?: Record<string, number>;
  /** Peak RSS of the side's process during the call, when the host reports it. */
  peak?: number;
}

function method(name: string): MethodPlugin<unknown> {
  return getPlugin("method", name) as MethodPlugin<unknown>;
}

interface LimeInput {
  batch: Batch;
  logits: Tensor;
  target: number;
  /** The preprocessed input as `.npy`, for the PyTorch side. */
  path: string;
}

const limeInputs = new Map<string, LimeInput>();

/**
 * Chelsea through the `image` preprocess, as the pipeline runner would hand it to `lime`, once
 * per engine (and written once for PyTorch).
 */
async function limeInput(model: OnnxModel): Promise<LimeInput> {
  const key = model.backend.name;
  const cached = limeInputs.get(key);
  if (cached) return cached;
  const pre = getPlugin("preprocess", "image") as PreprocessPlugin<unknown>;
  const batch = await pre.run({ sources: [LIME_IMAGE], model }, pre.params.parse({}));
  const logits = (await model.run(batch.tensor))[model.outputName];
  const target = logits.data.indexOf(Math.max(...logits.data));
  const path = `${OUT}/lime_input_${key}.npy`;
  await Deno.writeFile(path, encodeNpy(batch.tensor));
  const input = { batch, logits, target, path };
  limeInputs.set(key, input);
  return input;
}

/**
 * One Lantern call of case `c` on `engine`. `warm` runs a cheaper variant that still builds every
 * graph and session the timed call needs (e.g. IG with 16 + 2 points covers both chunk shapes).
 */
export async function lanternCall(
  m: Loaded,
  engine: Engine,
  c: Case,
  warm: boolean,
): Promise<RunOut> {
  const model = m.models[engine]!;
  const x = rows(m.input, 0, c.batch);
  const logits = rows(m.logits[engine]!, 0, c.batch);
  const target = m.targets.slice(0, c.batch);
  const runMethod = async (name: string, params: Record<string, unknown>) => {
    const plugin = method(name);
    const parsed = plugin.params.parse(params);
    const t = performance.now();
    const e = await plugin.run(
      { model, batch: { tensor: x, names: target.map(String) }, logits },
      parsed,
    );
    return { ms: performance.now() - t, result: e.map, extra: {} } as RunOut;
  };
  const warmPoints = INTERNAL_BATCH + 2;
  switch (c.kind) {
    case "forward": {
      const t = performance.now();
      const result = (await model.run(x))[model.outputName];
      return { ms: performance.now() - t, result };
    }
    case "grad": {
      const t = performance.now();
      const { grad } = await inputGradients(model, x, { targets: target, classes: CLASSES });
      return { ms: performance.now() - t, result: grad };
    }
    case "gradcam":
      return await runMethod("gradcam", { target });
    case "ig":
      return await runMethod("integrated-gradients", {
        target,
        steps: warm ? warmPoints : IG_STEPS,
        rule: "gausslegendre",
        internal_batch: INTERNAL_BATCH,
      });
    case "smoothgrad":
      return await runMethod("smoothgrad", {
        target,
        samples: warm ? warmPoints : SG_SAMPLES,
        sigma: SG_SIGMA,
        internal_batch: INTERNAL_BATCH,
      });
    case "occlusion":
      return await runMethod("occlusion", {
        target,
        window: OCC_WINDOW,
        stride: OCC_STRIDE,
        internal_batch: INTERNAL_BATCH,
      });
    case "actmax": {
      const plugin = method("activation-max");
      const steps = warm ? AM_WARM_STEPS : AM_STEPS;
      const e = await plugin.run(
        {
          model,
          batch: { tensor: tensor(new Float32Array(PIXELS), [1, 3, 224, 224]), names: ["am"] },
          logits: rows(m.logits[engine]!, 0, 1),
        },
        plugin.params.parse({ objective: "channel", layer: AM_LAYER, channel: 0, steps, seed: 0 }),
      );
      const sps = (e.info as { steps_per_second: number }).steps_per_second;
      return { ms: (steps * 1000) / sps, extra: { steps_per_second: sps } };
    }
    case "lime": {
      const input = await limeInput(model);
      const plugin = method("lime");
      const t = performance.now();
      const e = await plugin.run(
        { model, batch: input.batch, logits: input.logits },
        plugin.params.parse({ samples: warm ? LIME_WARM_SAMPLES : LIME_SAMPLES }),
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
  }
}

/** One PyTorch call of case `c`; `save` names a file for the result when the case compares it. */
export async function torchCall(
  torch: TorchWorker,
  m: Loaded,
  c: Case,
  options: { warm: boolean; save?: string },
): Promise<RunOut> {
  const warmPoints = INTERNAL_BATCH + 2;
  let r: Reply;
  if (c.kind === "actmax") {
    const steps = options.warm ? AM_WARM_STEPS : AM_STEPS;
    r = await torch.request({ op: "actmax", steps, seed: 0, memory: true });
    return {
      ms: r.ms as number,
      extra: { steps_per_second: r.steps_per_second as number },
      peak: r.peak_rss as number | undefined,
    };
  }
  if (c.kind === "lime") {
    const input = await limeInput(m.models.wasm!);
    r = await torch.request({
      op: "lime",
      input: input.path,
      target: input.target,
      samples: options.warm ? LIME_WARM_SAMPLES : LIME_SAMPLES,
      internal_batch: (method("lime").params.parse({}) as { internal_batch: number })
        .internal_batch,
      memory: true,
    });
    return {
      ms: r.ms as number,
      extra: { segmentation_ms: r.segmentation_ms as number, segments: r.segments as number },
      peak: r.peak_rss as number | undefined,
    };
  }
  r = await torch.request({
    op: "run",
    model: c.model,
    case: c.kind,
    batch: c.batch,
    target: m.targets.slice(0, c.batch),
    steps: options.warm && c.kind === "ig" ? warmPoints : IG_STEPS,
    samples: options.warm && c.kind === "smoothgrad" ? warmPoints : SG_SAMPLES,
    sigma: SG_SIGMA,
    window: OCC_WINDOW,
    stride: OCC_STRIDE,
    internal_batch: INTERNAL_BATCH,
    save: options.save,
    memory: true,
  });
  let result: Tensor | undefined;
  if (options.save) {
    result = decodeNpy(Deno.readFileSync(options.save), options.save);
    await Deno.remove(options.save);
  }
  return { ms: r.ms as number, result, peak: r.peak_rss as number | undefined };
}
