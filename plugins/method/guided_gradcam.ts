/**
 * `guided-gradcam`: guided backpropagation multiplied by the Grad-CAM map upsampled to the input
 * (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391, section 3.1: "L^c is first upsampled
 * to the input image resolution using bilinear interpolation"). `upsample: nearest` gives
 * Captum's `GuidedGradCam` default. Output `[N,C,H,W]`.
 *
 * @module
 */
import { z } from "zod";
import { tensor } from "../../kernels/tensor.ts";
import { upsampleBilinear, upsampleNearest } from "../../kernels/upsample.ts";
import { explanation, since } from "../../pipeline/explanation.ts";
import { resolveLayer } from "../../pipeline/layers.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { targetParam } from "../../pipeline/targets.ts";
import { gradcam } from "./gradcam.ts";
import { internalBatchParam, targetInputGradients } from "./_gradient.ts";

/** Parameters of `guided-gradcam`. */
export const guidedGradcamParams = z.object({
  target: targetParam,
  layer: z.string().optional(),
  upsample: z.enum(["bilinear", "nearest"]).default("bilinear"),
  internal_batch: internalBatchParam,
}).strict();

/** Guided Grad-CAM. */
export const guidedGradcam = defineMethod({
  name: "guided-gradcam",
  description: "Guided backprop × upsampled Grad-CAM (Selvaraju et al. 2017), [N,C,H,W]",
  params: guidedGradcamParams,
  async run(input, params) {
    const layer = await resolveLayer(input.model, params.layer, { rank: 4 });
    const t0 = performance.now();
    const coarse = (await gradcam.run(input, {
      target: params.target,
      layer: layer.name,
      relu: true,
      internal_batch: params.internal_batch,
    })).map;
    const guided = await targetInputGradients(input, {
      target: params.target,
      relu: "guided",
      batchSize: params.internal_batch,
    });
    const [r, c, h, w] = guided.grad.dims;
    const up = params.upsample === "bilinear"
      ? upsampleBilinear(coarse, [h, w])
      : upsampleNearest(coarse, [h, w]);
    const out = new Float32Array(guided.grad.data.length);
    for (let i = 0; i < r; i++) {
      for (let ch = 0; ch < c; ch++) {
        const base = (i * c + ch) * h * w;
        for (let p = 0; p < h * w; p++) {
          out[base + p] = guided.grad.data[base + p] * up.data[i * h * w + p];
        }
      }
    }
    return explanation(input.model, {
      method: "guided-gradcam",
      rows: guided.rows,
      map: tensor(out, [r, c, h, w]),
      space: "input",
      layer: layer.name,
      timings: { gradient: since(t0) },
    });
  },
});
