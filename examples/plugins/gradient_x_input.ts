/**
 * Example method plugin: gradient × input (Shrikumar et al. 2016, "Not Just a Black Box: Learning
 * Important Features Through Propagating Activation Differences"), the input multiplied
 * elementwise by the gradient of the target's score with respect to it.
 *
 * @module
 */
import {
  defineMethod,
  explanation,
  internalBatchParam,
  targetInputGradients,
  targetParam,
  tensor,
  z,
} from "../../mod.ts";

/** Gradient × input: x ⊙ ∂y_c/∂x, `[N,C,H,W]` (one row per image and target). */
export const gradientTimesInput = defineMethod({
  name: "gradient-x-input",
  description: "Input times its gradient, [N,C,H,W]",
  params: z.object({ target: targetParam, internal_batch: internalBatchParam }).strict(),
  async run(input, { target, internal_batch }) {
    const { rows, input: x, grad } = await targetInputGradients(input, {
      target,
      batchSize: internal_batch,
    });
    const map = tensor(grad.data.map((g, i) => g * x.data[i]), grad.dims);
    return explanation(input.model, { method: "gradient-x-input", rows, map, space: "input" });
  },
});
