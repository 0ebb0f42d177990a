/**
 * Separable Gaussian blur of `[N,C,H,W]` tensors (edges replicate), for blurred baselines.
 *
 * @module
 */
import { type Tensor, tensor } from "./tensor.ts";

/** Blur each channel plane with a Gaussian of standard deviation `sigma` pixels. */
export function gaussianBlur(t: Tensor, sigma: number): Tensor {
  if (sigma <= 0) return t;
  const [n, c, h, w] = t.dims;
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    sum += kernel[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  }
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  const out = new Float32Array(t.data.length);
  const tmp = new Float32Array(h * w);
  const clamp = (v: number, hi: number) => v < 0 ? 0 : v > hi ? hi : v;
  for (let p = 0; p < n * c; p++) {
    const src = t.data.subarray(p * h * w, (p + 1) * h * w);
    const dst = out.subarray(p * h * w, (p + 1) * h * w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let k = -radius; k <= radius; k++) {
          s += kernel[k + radius] * src[y * w + clamp(x + k, w - 1)];
        }
        tmp[y * w + x] = s;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let k = -radius; k <= radius; k++) {
          s += kernel[k + radius] * tmp[clamp(y + k, h - 1) * w + x];
        }
        dst[y * w + x] = s;
      }
    }
  }
  return tensor(out, t.dims, t.layout);
}
