/**
 * The CAM family's shared pipeline (after pytorch-grad-cam's `BaseCAM`): a variant only defines
 * per-channel weights; this module forms Σ_k w_k·A_k, applies the optional ReLU and packs the
 * `[R,1,h,w]` result. Helpers for (image, target) rows live here too.
 *
 * @module
 */
import { sizeOf, type Tensor, tensor } from "../../kernels/tensor.ts";

/** Σ_k weights[r][k] · acts[r,k] for each row r, `[R,1,h,w]`; ReLU when `relu` is set. */
export function weightedSum(
  acts: Tensor,
  weights: Float32Array,
  options: { relu: boolean },
): Tensor {
  const [r, k, h, w] = acts.dims;
  const hw = h * w;
  const out = new Float32Array(r * hw);
  for (let i = 0; i < r; i++) {
    const map = out.subarray(i * hw, (i + 1) * hw);
    for (let ch = 0; ch < k; ch++) {
      const wk = weights[i * k + ch];
      if (wk === 0) continue;
      const f = acts.data.subarray((i * k + ch) * hw, (i * k + ch + 1) * hw);
      for (let p = 0; p < hw; p++) map[p] += wk * f[p];
    }
    if (options.relu) { for (let p = 0; p < hw; p++) if (map[p] < 0) map[p] = 0; }
  }
  return tensor(out, [r, 1, h, w]);
}

/** Spatial mean of each channel of `t` `[R,K,h,w]` → `[R·K]`. */
export function spatialMean(t: Tensor): Float32Array {
  const [r, k, h, w] = t.dims;
  const hw = h * w;
  const out = new Float32Array(r * k);
  for (let i = 0; i < r * k; i++) {
    let s = 0;
    for (let p = 0; p < hw; p++) s += t.data[i * hw + p];
    out[i] = s / hw;
  }
  return out;
}

/** The rows of `t` picked by `images` (row r is `t[images[r]]`); `t` itself when they are 0..N-1. */
export function gatherRows(t: Tensor, images: readonly number[]): Tensor {
  if (images.length === t.dims[0] && images.every((img, i) => img === i)) return t;
  const per = sizeOf(t.dims.slice(1));
  const out = new Float32Array(images.length * per);
  images.forEach((img, r) => out.set(t.data.subarray(img * per, (img + 1) * per), r * per));
  return tensor(out, [images.length, ...t.dims.slice(1)], t.layout);
}
