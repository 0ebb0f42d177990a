/**
 * Example method plugin from the README: gradient × input (Shrikumar et al. 2016). Use it from a
 * pipeline with `plugin: ./gradient_x_input.ts` (path relative to the pipeline file).
 *
 * @module
 */
import { z } from "zod"; // npm:zod@4 in your import map
import {
  defineMethod,
  explanation,
  inputGradients,
  resolveTargetRows,
  targetParam,
  tensor,
} from "../mod.ts";

/** Gradient × input (Shrikumar et al. 2016). */
export const gradientTimesInput = defineMethod({
  name: "gradient-x-input",
  description: "Input times its gradient, [N,C,H,W]",
  params: z.object({ target: targetParam }).strict(),
  async run({ model, batch, logits }, { target }) {
    const rows = resolveTargetRows(target, logits);
    const { grad } = await inputGradients(model, batch.tensor, {
      targets: rows.targets,
      classes: logits.dims[1],
    });
    const map = tensor(grad.data.map((g, i) => g * batch.tensor.data[i]), grad.dims);
    return explanation(model, { method: "gradient-x-input", rows, map, space: "input" });
  },
});
