/**
 * `saliency`: the gradient of the class score with respect to the input pixels (Simonyan,
 * Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks", https://arxiv.org/abs/1312.6034,
 * Eq. 3): w = ∂S_c/∂I at the image. `abs: true` (the default, as in the paper and Captum's
 * `Saliency`) returns |w|. Output `[N,C,H,W]`.
 *
 * @module
 */
import { z } from "zod";
import { tensor } from "../../kernels/tensor.ts";
import { explanation, since } from "../../pipeline/explanation.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { targetParam } from "../../pipeline/targets.ts";
import { internalBatchParam, targetInputGradients } from "./_gradient.ts";

/** Parameters of `saliency`. */
export const saliencyParams = z.object({
  target: targetParam,
  /** Absolute value of the gradient. */
  abs: z.boolean().default(true),
  internal_batch: internalBatchParam,
}).strict();

/** Vanilla gradient saliency. */
export const saliency = defineMethod({
  name: "saliency",
  description: "Input gradient of the class score (Simonyan et al. 2014), [N,C,H,W]",
  params: saliencyParams,
  async run(input, params) {
    const t0 = performance.now();
    const { rows, grad } = await targetInputGradients(input, {
      target: params.target,
      batchSize: params.internal_batch,
    });
    const map = params.abs ? tensor(grad.data.map(Math.abs), grad.dims) : grad;
    return explanation(input.model, {
      method: "saliency",
      rows,
      map,
      space: "input",
      timings: { gradient: since(t0) },
    });
  },
});
