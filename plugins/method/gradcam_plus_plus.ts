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
import type { Tensor } from "../../kernels/tensor.ts";
import { defineCamMethod } from "./_cam.ts";

const EPS = 1e-6; // as pytorch-grad-cam

/** Grad-CAM++ channel weights (Eq. 19 and the weight sum after it). */
function plusPlusWeights(acts: Tensor, grads: Tensor): Float32Array {
  const [r, k, h, w] = acts.dims;
  const hw = h * w;
  const weights = new Float32Array(r * k);
  for (let c = 0; c < r * k; c++) {
    const a = acts.data.subarray(c * hw, (c + 1) * hw);
    const g = grads.data.subarray(c * hw, (c + 1) * hw);
    let sumA = 0;
    for (let p = 0; p < hw; p++) sumA += a[p];
    let wk = 0;
    for (let p = 0; p < hw; p++) {
      if (g[p] <= 0) continue; // α is 0 where g = 0, and ReLU(g) is 0 where g < 0
      const g2 = g[p] * g[p];
      wk += (g2 / (2 * g2 + sumA * g2 * g[p] + EPS)) * g[p];
    }
    weights[c] = wk;
  }
  return weights;
}

/** Grad-CAM++. */
export const gradcamPlusPlus = defineCamMethod({
  name: "gradcam++",
  description: "Grad-CAM with higher-order pixel weights (Chattopadhay et al. 2018), [N,1,h,w]",
  weights: plusPlusWeights,
});
