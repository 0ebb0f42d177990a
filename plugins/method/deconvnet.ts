/**
 * `deconvnet`: reconstruct the input pattern behind a class score by passing the signal backward
 * through "rectified" unpooling and transposed filters (Zeiler & Fergus 2014, "Visualizing and
 * Understanding Convolutional Networks", https://arxiv.org/abs/1311.2901, section 2.1). As Captum's
 * `Deconvolution`, this is the gradient with each ReLU's backward replaced by
 * R_l = max(R_{l+1}, 0), ignoring the forward activation. Applies to every `Relu` node and every
 * ReLU-like `Clip` (min 0). Output `[N,C,H,W]`.
 *
 * @module
 */
import { z } from "zod";
import { explanation, since } from "../../pipeline/explanation.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { targetParam } from "../../pipeline/targets.ts";
import { internalBatchParam, targetInputGradients } from "./_gradient.ts";

/** Parameters of `deconvnet`. */
export const deconvnetParams = z.object({
  target: targetParam,
  internal_batch: internalBatchParam,
}).strict();

/** Deconvolution network visualization. */
export const deconvnet = defineMethod({
  name: "deconvnet",
  description: "Backward pass with ReLU applied to the signal (Zeiler & Fergus 2014), [N,C,H,W]",
  params: deconvnetParams,
  async run(input, params) {
    const t0 = performance.now();
    const { rows, grad } = await targetInputGradients(input, {
      target: params.target,
      relu: "deconvnet",
      batchSize: params.internal_batch,
    });
    return explanation(input.model, {
      method: "deconvnet",
      rows,
      map: grad,
      space: "input",
      timings: { gradient: since(t0) },
    });
  },
});
