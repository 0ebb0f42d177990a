/**
 * `guided-backprop`: the input gradient with every ReLU's backward pass replaced by the guided
 * rule (Springenberg et al. 2015, "Striving for Simplicity: The All Convolutional Net",
 * https://arxiv.org/abs/1412.6806, Fig. 1): R_l = (f_l > 0) · (R_{l+1} > 0) · R_{l+1}.
 * Applies to every `Relu` node and every ReLU-like `Clip` (min 0). Output `[N,C,H,W]`.
 *
 * @module
 */
import { z } from "zod";
import { explanation, since } from "../../pipeline/explanation.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { targetParam } from "../../pipeline/targets.ts";
import { internalBatchParam, targetInputGradients } from "./_gradient.ts";

/** Parameters of `guided-backprop`. */
export const guidedBackpropParams = z.object({
  target: targetParam,
  internal_batch: internalBatchParam,
}).strict();

/** Guided backpropagation. */
export const guidedBackprop = defineMethod({
  name: "guided-backprop",
  description: "Gradient with guided ReLU backward (Springenberg et al. 2015), [N,C,H,W]",
  params: guidedBackpropParams,
  async run(input, params) {
    const t0 = performance.now();
    const { rows, grad } = await targetInputGradients(input, {
      target: params.target,
      relu: "guided",
      batchSize: params.internal_batch,
    });
    return explanation(input.model, {
      method: "guided-backprop",
      rows,
      map: grad,
      space: "input",
      timings: { gradient: since(t0) },
    });
  },
});
