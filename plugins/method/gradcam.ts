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
import { defineCamMethod, spatialMean } from "./_cam.ts";

/** Grad-CAM: channel weights are the spatial mean of the gradients (Eq. 1). */
export const gradcam = defineCamMethod({
  name: "gradcam",
  description: "Gradient-weighted class activation map (Selvaraju et al. 2017), [N,1,h,w]",
  weights: (_acts, grads) => spatialMean(grads),
});
