/**
 * Shared steps of the gradient methods: resolve target rows, gather their inputs, and take the
 * gradient of each row's target score with respect to the input or a layer.
 *
 * @module
 */
import { z } from "zod";
import type { ReluRule } from "../../graph/autodiff.ts";
import { gatherBatch, type Tensor } from "../../kernels/tensor.ts";
import { gradients, inputGradients, oneHot } from "../../pipeline/gradients.ts";
import type { MethodInput } from "../../pipeline/plugin.ts";
import { resolveTargetRows, type Target, type TargetRows } from "../../pipeline/targets.ts";

/** Rows per backward pass; bounds peak memory. */
export const internalBatchParam: z.ZodDefault<z.ZodNumber> = z.number().int().positive().default(
  16,
);

/** Gradient of each row's target score with respect to the input. */
export async function targetInputGradients(
  { model, batch, logits }: MethodInput,
  options: { target: Target; relu?: ReluRule; batchSize?: number },
): Promise<{ rows: TargetRows; input: Tensor; grad: Tensor }> {
  const rows = resolveTargetRows(options.target, logits);
  const input = gatherBatch(batch.tensor, rows.images);
  const { grad } = await inputGradients(model, input, {
    targets: rows.targets,
    classes: logits.dims[1],
    relu: options.relu,
    batchSize: options.batchSize,
  });
  return { rows, input, grad };
}

/** Activations of `layer` and the gradient of each row's target score with respect to them. */
export async function targetLayerGradients(
  { model, batch, logits }: MethodInput,
  options: { target: Target; layer: string; batchSize?: number },
): Promise<{ rows: TargetRows; acts: Tensor; grad: Tensor }> {
  const rows = resolveTargetRows(options.target, logits);
  const input = gatherBatch(batch.tensor, rows.images);
  const r = await gradients(model, { input, seed: oneHot(rows.targets, logits.dims[1]) }, {
    wrt: [options.layer],
    keep: [options.layer],
    batchSize: options.batchSize,
  });
  return { rows, acts: r.kept[options.layer], grad: r.grads[0] };
}
