/**
 * Batched forward passes for perturbation methods: many inputs, evaluated `batchSize` at a time,
 * with progress reporting and bounded memory.
 *
 * @module
 */
import { sizeOf, tensor, zeros } from "../kernels/tensor.ts";
import { LanternError } from "./errors.ts";
import type { ProgressFn } from "./plugin.ts";
import type { Batch, Model } from "./types.ts";

/** Options for {@linkcode forwardMany}. */
export interface ForwardManyOptions {
  /** Inputs per forward pass (default 16). */
  batchSize?: number;
  /** Called after each batch. */
  progress?: ProgressFn;
  /** Progress label. */
  label?: string;
}

/**
 * Evaluate `count` inputs of shape `inputDims` (batch axis excluded), made on demand by `fill`,
 * and hand the class scores of each to `consume(index, scores)`.
 */
export async function forwardMany(
  model: Model,
  spec: {
    count: number;
    inputDims: readonly number[];
    fill: (index: number, into: Float32Array) => void;
    consume: (index: number, scores: Float32Array) => void;
  },
  options: ForwardManyOptions = {},
): Promise<void> {
  const batchSize = Math.max(1, options.batchSize ?? 16);
  const per = sizeOf(spec.inputDims);
  let buffer = new Float32Array(Math.min(batchSize, spec.count) * per);
  for (let start = 0; start < spec.count; start += batchSize) {
    const n = Math.min(batchSize, spec.count - start);
    if (buffer.length !== n * per) buffer = new Float32Array(n * per);
    for (let j = 0; j < n; j++) spec.fill(start + j, buffer.subarray(j * per, (j + 1) * per));
    const scores = (await model.run(tensor(buffer, [n, ...spec.inputDims])))[model.outputName];
    const k = scores.dims[1];
    for (let j = 0; j < n; j++) spec.consume(start + j, scores.data.subarray(j * k, (j + 1) * k));
    options.progress?.(start + n, spec.count, options.label);
  }
}

/** One zero input of `model`'s shape named `name`, for methods that synthesize their input. */
export function zeroBatch(model: Model, name: string): Batch {
  const dims = model.inputShape.map((d, i) => (i === 0 ? 1 : d));
  if (dims.some((d) => !(d > 0))) {
    throw new LanternError(
      `Cannot make an input for model ${model.name}: its input shape [${model.inputShape}] is not fixed, give inputs`,
    );
  }
  return { tensor: zeros(dims), names: [name] };
}
