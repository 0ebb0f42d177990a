/**
 * Gradients for methods: build (once per request shape) the forward+backward ONNX graph from
 * `graph/autodiff.ts`, run it on the model's backend, and chunk large batches.
 *
 * The seed is an input of the graph, so any target is a choice of seed: a one-hot over the class
 * scores for a class target, a weighted sum of scores, or a mask over a layer for a channel or a
 * neuron. Built-in methods and user plugins share this module.
 *
 * @module
 */
import { buildGradientGraph, type GradientGraph, type ReluRule } from "../graph/autodiff.ts";
import { sizeOf, type Tensor, tensor } from "../kernels/tensor.ts";
import { LanternError } from "./errors.ts";
import type { Model } from "./types.ts";
import type { ProgressFn } from "./plugin.ts";
import { modelProto } from "./layers.ts";

/** What to differentiate and with respect to what. */
export interface GradientRequest {
  /** Tensor to differentiate (default: the class scores). */
  of?: string;
  /** Tensors to differentiate with respect to (default: the input). */
  wrt?: readonly string[];
  /** ReLU rule for every Relu and ReLU-like Clip node (default `standard`). */
  relu?: ReluRule;
  /** Forward tensors to return too (e.g. a layer's activations). */
  keep?: readonly string[];
}

/** A model that can run derived graphs (every built-in model can). */
interface GraphModel extends Model {
  graphSession(
    key: string,
    build: () => Uint8Array,
  ): Promise<import("../kernels/session.ts").GraphSession>;
}

/**
 * A model that computes gradients itself rather than by running derived graphs: a sandboxed
 * plugin's proxy model forwards the request to the thread that owns the sessions.
 */
export interface GradientHookModel extends Model {
  /** Compute what {@linkcode gradients} computes for this model. */
  gradients(
    feeds: { input: Tensor; seed: Tensor },
    request: GradientRequest & { batchSize?: number },
  ): Promise<GradientResult>;
}

/** Whether `model` computes gradients itself ({@linkcode GradientHookModel}). */
export function hasGradientHook(model: Model): model is GradientHookModel {
  return typeof (model as Partial<GradientHookModel>).gradients === "function";
}

const graphs = new WeakMap<Model, Map<string, GradientGraph>>();

function gradientGraph(
  model: Model,
  spec: Required<GradientRequest>,
): { key: string; graph: GradientGraph } {
  const key = JSON.stringify(["grad", spec.of, spec.wrt, spec.relu, spec.keep]);
  let perModel = graphs.get(model);
  if (!perModel) graphs.set(model, perModel = new Map());
  let graph = perModel.get(key);
  if (!graph) {
    graph = buildGradientGraph(modelProto(model), spec);
    perModel.set(key, graph);
  }
  return { key, graph };
}

/** The result of one gradient run. */
export interface GradientResult {
  /** Gradient of the seeded output with respect to each `wrt` tensor, in order. */
  readonly grads: readonly Tensor[];
  /** The differentiated tensor's value (`of`). */
  readonly output: Tensor;
  /** Each `keep` tensor, by name. */
  readonly kept: Readonly<Record<string, Tensor>>;
}

/**
 * Run forward and backward on `input` `[N,…]` with the seed `seed` (same shape as `of`),
 * in chunks of at most `batchSize` rows.
 */
export async function gradients(
  model: Model,
  feeds: { input: Tensor; seed: Tensor },
  request: GradientRequest & { batchSize?: number } = {},
): Promise<GradientResult> {
  if (hasGradientHook(model)) return model.gradients(feeds, request);
  const spec = {
    of: request.of ?? model.outputName,
    wrt: request.wrt ?? [model.inputName],
    relu: request.relu ?? "standard",
    keep: request.keep ?? [],
  };
  const gm = model as GraphModel;
  if (typeof gm.graphSession !== "function") {
    throw new LanternError(
      `Cannot compute gradients: model "${model.name}" cannot run derived graphs`,
    );
  }
  const { key, graph } = gradientGraph(model, spec);
  const session = await gm.graphSession(key, () => graph.bytes);
  const n = feeds.input.dims[0];
  const chunk = Math.max(1, request.batchSize ?? n);
  const fetches = [...graph.grads, ...graph.outputs];
  const parts: Record<string, Tensor>[] = [];
  for (let start = 0; start < n; start += chunk) {
    const end = Math.min(n, start + chunk);
    const out = await session.run({
      [model.inputName]: rows(feeds.input, start, end),
      [graph.seed]: rows(feeds.seed, start, end),
    }, fetches);
    parts.push(out);
  }
  const join = (name: string) => concatRows(parts.map((p) => p[name]));
  const kept: Record<string, Tensor> = {};
  for (const name of spec.keep) kept[name] = join(name);
  return { grads: graph.grads.map(join), output: join(spec.of), kept };
}

/** Rows `[start, end)` of the batch axis (a view). */
export function rows(t: Tensor, start: number, end: number): Tensor {
  if (start === 0 && end === t.dims[0]) return t;
  const per = sizeOf(t.dims.slice(1));
  return tensor(
    t.data.subarray(start * per, end * per),
    [end - start, ...t.dims.slice(1)],
    t.layout,
  );
}

function concatRows(parts: Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  const inner = parts[0].dims.slice(1);
  const total = parts.reduce((s, p) => s + p.dims[0], 0);
  const out = new Float32Array(total * sizeOf(inner));
  let off = 0;
  for (const p of parts) {
    out.set(p.data, off);
    off += p.data.length;
  }
  return tensor(out, [total, ...inner]);
}

/** A one-hot seed `[N,K]` selecting class `targets[i]` for row i. */
export function oneHot(targets: readonly number[], classes: number): Tensor {
  const data = new Float32Array(targets.length * classes);
  targets.forEach((t, i) => data[i * classes + t] = 1);
  return tensor(data, [targets.length, classes]);
}

/** Gradient of the score of `targets[i]` with respect to the input, for each row of `input`. */
export async function inputGradients(
  model: Model,
  input: Tensor,
  options: { targets: readonly number[]; classes: number; relu?: ReluRule; batchSize?: number },
): Promise<{ grad: Tensor; scores: Float32Array }> {
  const seed = oneHot(options.targets, options.classes);
  const r = await gradients(model, { input, seed }, {
    relu: options.relu,
    batchSize: options.batchSize,
  });
  const k = options.classes;
  const scores = Float32Array.from(options.targets, (t, i) => r.output.data[i * k + t]);
  return { grad: r.grads[0], scores };
}

/**
 * Input gradients of `count` inputs made on demand, `batchSize` at a time (bounded memory): row
 * `i` is filled by `fill(i, into)`, which returns its target class, and its gradient is handed to
 * `consume(i, grad)`. The path and noise methods (IG, SmoothGrad) are built on this.
 */
export async function inputGradientsMany(
  model: Model,
  spec: {
    count: number;
    inputDims: readonly number[];
    classes: number;
    fill: (index: number, into: Float32Array) => number;
    consume: (index: number, grad: Float32Array) => void;
  },
  options: { batchSize?: number; progress?: ProgressFn; label?: string } = {},
): Promise<void> {
  const batchSize = Math.max(1, options.batchSize ?? 16);
  const per = sizeOf(spec.inputDims);
  for (let start = 0; start < spec.count; start += batchSize) {
    const n = Math.min(batchSize, spec.count - start);
    const points = new Float32Array(n * per);
    const targets: number[] = [];
    for (let j = 0; j < n; j++) {
      targets.push(spec.fill(start + j, points.subarray(j * per, (j + 1) * per)));
    }
    const { grad } = await inputGradients(model, tensor(points, [n, ...spec.inputDims]), {
      targets,
      classes: spec.classes,
    });
    for (let j = 0; j < n; j++) spec.consume(start + j, grad.data.subarray(j * per, (j + 1) * per));
    options.progress?.(start + n, spec.count, options.label);
  }
}
