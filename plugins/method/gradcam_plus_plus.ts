/**
 * `gradcam++`: Grad-CAM++ (Chattopadhay et al. 2018, "Grad-CAM++: Improved Visual Explanations
 * for Deep Convolutional Networks", https://arxiv.org/abs/1710.11063). Channel weights sum
 * positive gradients with per-pixel coefficients α (Eq. 19, using the exponential-output
 * identity that gives second and third derivatives as powers of the first, as the authors' code
 * and pytorch-grad-cam do):
 *
 *   α_ij^kc = g² / (2g² + Σ_ab A_ab^k · g³),   w_k^c = Σ_ij α_ij^kc · ReLU(g_ij)
 *
 * with g = ∂y^c/∂A^k_ij, then L^c = ReLU(Σ_k w_k^c A^k). Output `[N,1,h,w]`.
 *
 * @module
 */
import { z } from "zod";
import { explanation, since } from "../../pipeline/explanation.ts";
import { resolveLayer } from "../../pipeline/layers.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { targetParam } from "../../pipeline/targets.ts";
import { weightedSum } from "./_cam.ts";
import { internalBatchParam, targetLayerGradients } from "./_gradient.ts";

const EPS = 1e-6; // as pytorch-grad-cam

/** Parameters of `gradcam++`. */
export const gradcamPlusPlusParams = z.object({
  target: targetParam,
  layer: z.string().optional(),
  relu: z.boolean().default(true),
  internal_batch: internalBatchParam,
}).strict();

/** Grad-CAM++. */
export const gradcamPlusPlus = defineMethod({
  name: "gradcam++",
  description: "Grad-CAM with higher-order pixel weights (Chattopadhay et al. 2018), [N,1,h,w]",
  params: gradcamPlusPlusParams,
  async run(input, params) {
    const layer = await resolveLayer(input.model, params.layer, { rank: 4 });
    const t0 = performance.now();
    const { rows, acts, grad } = await targetLayerGradients(input, {
      target: params.target,
      layer: layer.name,
      batchSize: params.internal_batch,
    });
    const [r, k, h, w] = acts.dims;
    const hw = h * w;
    const weights = new Float32Array(r * k);
    for (let c = 0; c < r * k; c++) {
      const a = acts.data.subarray(c * hw, (c + 1) * hw);
      const g = grad.data.subarray(c * hw, (c + 1) * hw);
      let sumA = 0;
      for (let p = 0; p < hw; p++) sumA += a[p];
      let wk = 0;
      for (let p = 0; p < hw; p++) {
        if (g[p] === 0) continue;
        const g2 = g[p] * g[p];
        const alpha = g2 / (2 * g2 + sumA * g2 * g[p] + EPS); // Eq. 19
        if (g[p] > 0) wk += alpha * g[p];
      }
      weights[c] = wk;
    }
    const map = weightedSum(acts, weights, { relu: params.relu });
    return explanation(input.model, {
      method: "gradcam++",
      rows,
      map,
      space: "layer",
      layer: layer.name,
      timings: { gradient: since(t0) },
    });
  },
});
