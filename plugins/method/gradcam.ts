/**
 * `gradcam`: Gradient-weighted Class Activation Mapping (Selvaraju et al. 2017, "Grad-CAM: Visual
 * Explanations from Deep Networks via Gradient-based Localization",
 * https://arxiv.org/abs/1610.02391):
 *
 *   α_k^c = (1/Z) Σ_ij ∂y^c/∂A^k_ij   (Eq. 1),   L^c = ReLU(Σ_k α_k^c A^k)   (Eq. 2)
 *
 * at any 4-D layer (default: the last activation feeding the head). `relu: false` keeps negative
 * evidence (Captum's default). Output `[N,1,h,w]` at the layer's resolution.
 *
 * @module
 */
import { z } from "zod";
import { explanation, since } from "../../pipeline/explanation.ts";
import { resolveLayer } from "../../pipeline/layers.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { targetParam } from "../../pipeline/targets.ts";
import { spatialMean, weightedSum } from "./_cam.ts";
import { internalBatchParam, targetLayerGradients } from "./_gradient.ts";

/** Parameters of `gradcam`. */
export const gradcamParams = z.object({
  target: targetParam,
  /** ONNX tensor name of a 4-D activation (default: the last one feeding the head). */
  layer: z.string().optional(),
  relu: z.boolean().default(true),
  internal_batch: internalBatchParam,
}).strict();

/** Grad-CAM. */
export const gradcam = defineMethod({
  name: "gradcam",
  description: "Gradient-weighted class activation map (Selvaraju et al. 2017), [N,1,h,w]",
  params: gradcamParams,
  async run(input, params) {
    const layer = await resolveLayer(input.model, params.layer, { rank: 4 });
    const t0 = performance.now();
    const { rows, acts, grad } = await targetLayerGradients(input, {
      target: params.target,
      layer: layer.name,
      batchSize: params.internal_batch,
    });
    const alpha = spatialMean(grad); // Eq. 1
    const map = weightedSum(acts, alpha, { relu: params.relu }); // Eq. 2
    return explanation(input.model, {
      method: "gradcam",
      rows,
      map,
      space: "layer",
      layer: layer.name,
      timings: { gradient: since(t0) },
    });
  },
});
