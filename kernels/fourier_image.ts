/**
 * Differentiable image parameterizations for feature visualization, as Lucid's
 * `lucid.optvis.param` (Olah et al. 2017, "Feature Visualization", https://distill.pub/2017/feature-visualization/):
 *
 * - `fourier` (`fft_image`): the image is the inverse real 2-D DFT of a spectrum scaled by
 *   1/f^decay — so gradient steps move low frequencies as much as high ones;
 * - `pixel` (`pixel_image`): the raw values.
 *
 * Then `to_valid_rgb`: optionally decorrelate colour with the square root of ImageNet's colour
 * covariance, and squash into [0, 1] with a sigmoid. Each step has its exact adjoint, so the model's
 * input gradient is carried back to the parameters in closed form.
 *
 * @module
 */
import { fft, ifft } from "./fft.ts";
import type { Random } from "./random.ts";

/** Lucid's `color_correlation_svd_sqrt`: the square root of ImageNet's RGB covariance. */
export const COLOR_CORRELATION_SVD_SQRT: readonly (readonly number[])[] = [
  [0.26, 0.09, 0.02],
  [0.27, 0.00, -0.05],
  [0.27, -0.09, 0.03],
];

/** The colour matrix divided by its largest column norm, as Lucid's `_linear_decorrelate_color`. */
export function colorMatrix(): Float64Array {
  const m = COLOR_CORRELATION_SVD_SQRT;
  let maxNorm = 0;
  for (let j = 0; j < 3; j++) maxNorm = Math.max(maxNorm, Math.hypot(m[0][j], m[1][j], m[2][j]));
  return Float64Array.from(m.flat(), (v) => v / maxNorm);
}

/** Width of the internal even-width transform and the number of stored frequency columns. */
function dims(_h: number, w: number): { wi: number; wf: number } {
  const wi = w % 2 === 0 ? w : w + 1;
  return { wi, wf: wi / 2 + 1 };
}

function fftfreq(n: number, k: number): number {
  return (k < Math.ceil(n / 2) ? k : k - n) / n;
}

/**
 * Lucid's spectrum scale for an `h`×`w` image: 1/max(f, 1/max(h, w))^decay · √(hw), over the
 * `[h, wf]` half spectrum (wf = ⌊w/2⌋+1 for even w, ⌊w/2⌋+2 for odd w, as `rfft2d_freqs`).
 */
export function fourierScale(
  h: number,
  w: number,
  options: { decayPower?: number } = {},
): Float64Array {
  const decayPower = options.decayPower ?? 1;
  const { wf } = dims(h, w);
  const out = new Float64Array(h * wf);
  const floor = 1 / Math.max(h, w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < wf; x++) {
      const f = Math.hypot(fftfreq(h, y), fftfreq(w, x));
      out[y * wf + x] = Math.sqrt(h * w) / Math.pow(Math.max(f, floor), decayPower);
    }
  }
  return out;
}

const workspaces = new Map<string, Workspace>();

function workspace(h: number, w: number): Workspace {
  const key = `${h}x${w}`;
  let ws = workspaces.get(key);
  if (!ws) workspaces.set(key, ws = new Workspace(h, w));
  return ws;
}

/** Scratch buffers for one image size. */
class Workspace {
  readonly zRe: Float64Array;
  readonly zIm: Float64Array;
  readonly colRe: Float64Array;
  readonly colIm: Float64Array;
  readonly rowRe: Float64Array;
  readonly rowIm: Float64Array;
  constructor(readonly h: number, readonly w: number) {
    const { wi, wf } = dims(h, w);
    this.zRe = new Float64Array(h * wf);
    this.zIm = new Float64Array(h * wf);
    this.colRe = new Float64Array(h);
    this.colIm = new Float64Array(h);
    this.rowRe = new Float64Array(wi);
    this.rowIm = new Float64Array(wi);
  }
}

/**
 * One plane of `numpy.fft.irfft2` (ifft along rows, then the real inverse along columns), cropped
 * to `w` columns: `spec` holds `[h, wf, 2]` (real, imaginary) and `out` receives `[h, w]`. As
 * numpy's c2r, the imaginary parts of the zero and Nyquist columns are ignored.
 */
export function irfft2d(
  spec: Float32Array | Float64Array,
  out: Float32Array | Float64Array,
  size: { h: number; w: number },
): void {
  const { h, w } = size;
  const { wi, wf } = dims(h, w);
  const ws = workspace(h, w);
  for (let x = 0; x < wf; x++) {
    for (let y = 0; y < h; y++) {
      ws.colRe[y] = spec[(y * wf + x) * 2];
      ws.colIm[y] = spec[(y * wf + x) * 2 + 1];
    }
    ifft(ws.colRe, ws.colIm);
    for (let y = 0; y < h; y++) {
      ws.zRe[y * wf + x] = ws.colRe[y] / h;
      ws.zIm[y * wf + x] = ws.colIm[y] / h;
    }
  }
  for (let y = 0; y < h; y++) {
    ws.rowRe.fill(0);
    ws.rowIm.fill(0);
    for (let k = 0; k < wf; k++) {
      // Hermitian symmetry: the conjugate half doubles every column but DC and Nyquist.
      const c = k === 0 || k === wi / 2 ? 1 : 2;
      ws.rowRe[k] = c * ws.zRe[y * wf + k];
      ws.rowIm[k] = c * ws.zIm[y * wf + k];
    }
    ifft(ws.rowRe, ws.rowIm);
    for (let n = 0; n < w; n++) out[y * w + n] = ws.rowRe[n] / wi;
  }
}

/** The exact adjoint (transpose) of {@linkcode irfft2d}: `grad` `[h, w]` → `out` `[h, wf, 2]`. */
export function irfft2dAdjoint(
  grad: Float32Array | Float64Array,
  out: Float32Array | Float64Array,
  size: { h: number; w: number },
): void {
  const { h, w } = size;
  const { wi, wf } = dims(h, w);
  const ws = workspace(h, w);
  for (let y = 0; y < h; y++) {
    ws.rowRe.fill(0);
    ws.rowIm.fill(0);
    for (let n = 0; n < w; n++) ws.rowRe[n] = grad[y * w + n];
    fft(ws.rowRe, ws.rowIm);
    for (let k = 0; k < wf; k++) {
      const c = k === 0 || k === wi / 2 ? 1 : 2;
      ws.zRe[y * wf + k] = (c * ws.rowRe[k]) / wi;
      // Only the real part of DC and Nyquist reaches the output; their imaginary parts have none.
      ws.zIm[y * wf + k] = c === 1 ? 0 : (c * ws.rowIm[k]) / wi;
    }
  }
  for (let x = 0; x < wf; x++) {
    for (let y = 0; y < h; y++) {
      ws.colRe[y] = ws.zRe[y * wf + x];
      ws.colIm[y] = ws.zIm[y * wf + x];
    }
    fft(ws.colRe, ws.colIm);
    for (let y = 0; y < h; y++) {
      out[(y * wf + x) * 2] = ws.colRe[y] / h;
      out[(y * wf + x) * 2 + 1] = ws.colIm[y] / h;
    }
  }
}

/** Options of {@linkcode imageParameterization}. */
export interface ParameterizationOptions {
  /** Image height. */
  h: number;
  /** Image width. */
  w: number;
  /** `fourier` (Lucid's `fft_image`) or `pixel`. */
  kind: "fourier" | "pixel";
  /** Decorrelate colour with the ImageNet colour matrix (default true). */
  decorrelate?: boolean;
  /** Spectrum decay power of the 1/f scaling (default 1). */
  decayPower?: number;
}

/** A map from parameters to one RGB image `[3, h, w]` in [0, 1], with its adjoint. */
export interface ImageParameterization {
  /** Parameters per image. */
  readonly size: number;
  /** Fill `param` with Lucid's initial values (normal, standard deviation `sd`). */
  init(param: Float32Array, random: Random, sd?: number): void;
  /** `rgb` ← image of `param`. */
  forward(param: Float32Array, rgb: Float32Array): void;
  /** `gParam` ← ∂L/∂param from `rgb` (the forward result) and `gRgb` = ∂L/∂rgb. */
  backward(rgb: Float32Array, gRgb: Float32Array, gParam: Float32Array): void;
}

/**
 * Lucid's `image(w, h, fft=…, decorrelate=…)`: a Fourier or pixel parameterization followed by
 * `to_valid_rgb` (colour decorrelation and a sigmoid).
 */
export function imageParameterization(options: ParameterizationOptions): ImageParameterization {
  const { h, w, kind } = options;
  const decorrelate = options.decorrelate ?? true;
  const hw = h * w;
  const { wf } = dims(h, w);
  const plane = h * wf * 2;
  const scale = kind === "fourier"
    ? fourierScale(h, w, { decayPower: options.decayPower })
    : undefined;
  const m = decorrelate ? colorMatrix() : Float64Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1);
  const linear = new Float64Array(3 * hw);
  const gLinear = new Float64Array(3 * hw);
  const specBuf = new Float64Array(plane);
  const size = kind === "fourier" ? 3 * plane : 3 * hw;
  return {
    size,
    init(param, random, sd = 0.01) {
      random.fillNormal(param, sd);
    },
    forward(param, rgb) {
      if (scale) {
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < plane; i++) specBuf[i] = param[c * plane + i] * scale[i >> 1];
          // Lucid divides the fourier image by 4 to keep the sigmoid's input small at the start.
          irfft2d(specBuf, linear.subarray(c * hw, (c + 1) * hw), { h, w });
        }
        for (let i = 0; i < 3 * hw; i++) linear[i] /= 4;
      } else {
        for (let i = 0; i < 3 * hw; i++) linear[i] = param[i];
      }
      for (let p = 0; p < hw; p++) {
        const r = linear[p], g = linear[hw + p], b = linear[2 * hw + p];
        for (let c = 0; c < 3; c++) {
          const t = m[c * 3] * r + m[c * 3 + 1] * g + m[c * 3 + 2] * b;
          rgb[c * hw + p] = 1 / (1 + Math.exp(-t));
        }
      }
    },
    backward(rgb, gRgb, gParam) {
      for (let p = 0; p < hw; p++) {
        let gr = 0, gg = 0, gb = 0;
        for (let c = 0; c < 3; c++) {
          const s = rgb[c * hw + p];
          const gt = gRgb[c * hw + p] * s * (1 - s);
          gr += m[c * 3] * gt;
          gg += m[c * 3 + 1] * gt;
          gb += m[c * 3 + 2] * gt;
        }
        gLinear[p] = gr;
        gLinear[hw + p] = gg;
        gLinear[2 * hw + p] = gb;
      }
      if (scale) {
        for (let c = 0; c < 3; c++) {
          irfft2dAdjoint(gLinear.subarray(c * hw, (c + 1) * hw), specBuf, { h, w });
          for (let i = 0; i < plane; i++) gParam[c * plane + i] = (specBuf[i] * scale[i >> 1]) / 4;
        }
      } else {
        for (let i = 0; i < 3 * hw; i++) gParam[i] = gLinear[i];
      }
    },
  };
}
