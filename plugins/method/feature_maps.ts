/**
 * `feature-maps`: the activations of one layer, `[N,C,h,w]` — what each channel of a convolutional
 * layer responds to in the input (Zeiler & Fergus 2014, "Visualizing and Understanding
 * Convolutional Networks", https://arxiv.org/abs/1311.2901, section 2).
 *
 * @module
 */
import { z } from "zod";
import { valueRange } from "../../kernels/tensor.ts";
import { resolveLayer } from "../../pipeline/layers.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { resolveTargets, targetParam } from "../../pipeline/targets.ts";

/** Parameters of `feature-maps`. */
export const featureMapsParams = z.object({
  /** ONNX tensor name (default: the last 4-D activation feeding the head). */
  layer: z.string().optional(),
  /** Recorded in the result only; feature maps do not depend on a class. */
  target: targetParam,
}).strict();

/** The activations of a named layer. */
export const featureMaps = defineMethod({
  name: "feature-maps",
  description: "Activations of a layer, [N,C,h,w]",
  params: featureMapsParams,
  async run({ model, batch, logits }, params) {
    const layer = await resolveLayer(model, params.layer);
    const t0 = performance.now();
    const out = await model.run(batch.tensor, { outputs: [layer.name] });
    const map = out[layer.name];
    return {
      method: "feature-maps",
      targets: resolveTargets(params.target, logits),
      layer: layer.name,
      map,
      range: valueRange(map.data),
      timings: { forward: performance.now() - t0 },
      backend: model.backend.name,
      space: "layer",
    };
  },
});
