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
import { fftBatch } from "./fft.ts";
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

function workspace(h: number, w: number, planes: number): Workspace {
  const key = `${h}x${w}x${planes}`;
  let ws = workspaces.get(key);
  if (!ws) workspaces.set(key, ws = new Workspace(h, w, planes));
  return ws;
}

/**
 * Scratch buffers for `planes` images of one size. `z` holds the half spectra of all planes as
 * `[h, planes·wf]`, so the column transforms run as one batch; `u` holds the rows as `[wi, pairs]`,
 * two real rows per complex transform (row q in the real part, row q + pairs in the imaginary).
 */
class Workspace {
  readonly wi: number;
  readonly wf: number;
  readonly pairs: number;
  readonly zRe: Float64Array;
  readonly zIm: Float64Array;
  readonly uRe: Float64Array;
  readonly uIm: Float64Array;
  constructor(readonly h: number, readonly w: number, readonly planes: number) {
    const { wi, wf } = dims(h, w);
    this.wi = wi;
    this.wf = wf;
    this.pairs = Math.ceil((planes * h) / 2);
    this.zRe = new Float64Array(h * planes * wf);
    this.zIm = new Float64Array(h * planes * wf);
    this.uRe = new Float64Array(wi * this.pairs);
    this.uIm = new Float64Array(wi * this.pairs);
  }
}

/**
 * `planes` planes of `numpy.fft.irfft2`, cropped to `w` columns and multiplied by `gain`:
 * `spec` holds `[planes, h, wf, 2]`, each value first multiplied by `scale[y·wf + x]` when given,
 * and `out` receives `[planes, h, w]`.
 */
function irfft2dPlanes(
  spec: Float32Array | Float64Array,
  out: Float32Array | Float64Array,
  options: { ws: Workspace; scale?: Float64Array; gain: number },
): void {
  const { ws, scale } = options;
  const { h, w, wi, wf, planes, pairs, zRe, zIm, uRe, uIm } = ws;
  const plane = h * wf, stride = planes * wf;
  for (let c = 0; c < planes; c++) {
    for (let y = 0; y < h; y++) {
      const s = c * plane + y * wf, z = y * stride + c * wf;
      for (let x = 0; x < wf; x++) {
        const k = scale ? scale[y * wf + x] : 1;
        zRe[z + x] = spec[2 * (s + x)] * k;
        zIm[z + x] = spec[2 * (s + x) + 1] * k;
      }
    }
  }
  fftBatch(zRe, zIm, { n: h, batch: stride, inverse: true });
  // Each row's full spectrum is its Hermitian extension (numpy's c2r drops the imaginary parts of
  // the zero and Nyquist columns); rows q and q + pairs share one complex transform.
  const rows = planes * h, nyq = wi / 2;
  for (let q = 0; q < pairs; q++) {
    const a = (q % h) * stride + Math.floor(q / h) * wf;
    const second = q + pairs < rows;
    const b = second ? ((q + pairs) % h) * stride + Math.floor((q + pairs) / h) * wf : 0;
    for (let k = 0; k <= nyq; k++) {
      const edge = k === 0 || k === nyq;
      const ar = zRe[a + k], ai = edge ? 0 : zIm[a + k];
      const br = second ? zRe[b + k] : 0, bi = second && !edge ? zIm[b + k] : 0;
      uRe[k * pairs + q] = ar - bi;
      uIm[k * pairs + q] = ai + br;
      if (!edge) {
        // conj(A) + i·conj(B) at the mirrored frequency.
        uRe[(wi - k) * pairs + q] = ar + bi;
        uIm[(wi - k) * pairs + q] = br - ai;
      }
    }
  }
  fftBatch(uRe, uIm, { n: wi, batch: pairs, inverse: true });
  const g = options.gain / (h * wi);
  for (let q = 0; q < pairs; q++) {
    const oa = q * w, ob = (q + pairs) * w;
    const second = q + pairs < rows;
    for (let n = 0; n < w; n++) {
      out[oa + n] = uRe[n * pairs + q] * g;
      if (second) out[ob + n] = uIm[n * pairs + q] * g;
    }
  }
}

/**
 * The exact adjoint (transpose) of {@linkcode irfft2dPlanes}: `grad` `[planes, h, w]` → `out`
 * `[planes, h, wf, 2]`.
 */
function irfft2dPlanesAdjoint(
  grad: Float32Array | Float64Array,
  out: Float32Array | Float64Array,
  options: { ws: Workspace; scale?: Float64Array; gain: number },
): void {
  const { ws, scale } = options;
  const { h, w, wi, wf, planes, pairs, zRe, zIm, uRe, uIm } = ws;
  const plane = h * wf, stride = planes * wf;
  const rows = planes * h, nyq = wi / 2;
  for (let q = 0; q < pairs; q++) {
    const oa = q * w, ob = (q + pairs) * w;
    const second = q + pairs < rows;
    for (let n = 0; n < w; n++) {
      uRe[n * pairs + q] = grad[oa + n];
      uIm[n * pairs + q] = second ? grad[ob + n] : 0;
    }
    for (let n = w; n < wi; n++) uRe[n * pairs + q] = uIm[n * pairs + q] = 0;
  }
  fftBatch(uRe, uIm, { n: wi, batch: pairs });
  // Split the two real rows' spectra: A = (W[k] + conj W[−k])/2, B = (W[k] − conj W[−k])/(2i);
  // the transpose of the Hermitian extension doubles all but the zero and Nyquist columns, and
  // drops their imaginary parts.
  for (let q = 0; q < pairs; q++) {
    const a = (q % h) * stride + Math.floor(q / h) * wf;
    const second = q + pairs < rows;
    const b = second ? ((q + pairs) % h) * stride + Math.floor((q + pairs) / h) * wf : 0;
    for (let k = 0; k <= nyq; k++) {
      const m = k === 0 ? 0 : wi - k;
      const wr = uRe[k * pairs + q], wim = uIm[k * pairs + q];
      const vr = uRe[m * pairs + q], vi = uIm[m * pairs + q];
      const edge = k === 0 || k === nyq;
      const c = edge ? 0.5 : 1;
      zRe[a + k] = c * (wr + vr);
      zIm[a + k] = edge ? 0 : wim - vi;
      if (second) {
        zRe[b + k] = c * (wim + vi);
        zIm[b + k] = edge ? 0 : vr - wr;
      }
    }
  }
  fftBatch(zRe, zIm, { n: h, batch: stride });
  const g = options.gain / (h * wi);
  for (let c = 0; c < planes; c++) {
    for (let y = 0; y < h; y++) {
      const s = c * plane + y * wf, z = y * stride + c * wf;
      for (let x = 0; x < wf; x++) {
        const k = scale ? scale[y * wf + x] * g : g;
        out[2 * (s + x)] = zRe[z + x] * k;
        out[2 * (s + x) + 1] = zIm[z + x] * k;
      }
    }
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
  irfft2dPlanes(spec, out, { ws: workspace(size.h, size.w, 1), gain: 1 });
}

/** The exact adjoint (transpose) of {@linkcode irfft2d}: `grad` `[h, w]` → `out` `[h, wf, 2]`. */
export function irfft2dAdjoint(
  grad: Float32Array | Float64Array,
  out: Float32Array | Float64Array,
  size: { h: number; w: number },
): void {
  irfft2dPlanesAdjoint(grad, out, { ws: workspace(size.h, size.w, 1), gain: 1 });
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
  const [m00, m01, m02, m10, m11, m12, m20, m21, m22] = m;
  const linear = new Float64Array(3 * hw);
  const gLinear = new Float64Array(3 * hw);
  const ws = scale ? workspace(h, w, 3) : undefined;
  const size = kind === "fourier" ? 3 * plane : 3 * hw;
  return {
    size,
    init(param, random, sd = 0.01) {
      random.fillNormal(param, sd);
    },
    forward(param, rgb) {
      // Lucid divides the fourier image by 4 to keep the sigmoid's input small at the start.
      if (ws) irfft2dPlanes(param, linear, { ws, scale, gain: 1 / 4 });
      else linear.set(param);
      for (let p = 0; p < hw; p++) {
        const r = linear[p], g = linear[hw + p], b = linear[2 * hw + p];
        rgb[p] = 1 / (1 + Math.exp(-(m00 * r + m01 * g + m02 * b)));
        rgb[hw + p] = 1 / (1 + Math.exp(-(m10 * r + m11 * g + m12 * b)));
        rgb[2 * hw + p] = 1 / (1 + Math.exp(-(m20 * r + m21 * g + m22 * b)));
      }
    },
    backward(rgb, gRgb, gParam) {
      for (let p = 0; p < hw; p++) {
        const s0 = rgb[p], s1 = rgb[hw + p], s2 = rgb[2 * hw + p];
        const g0 = gRgb[p] * s0 * (1 - s0);
        const g1 = gRgb[hw + p] * s1 * (1 - s1);
        const g2 = gRgb[2 * hw + p] * s2 * (1 - s2);
        gLinear[p] = m00 * g0 + m10 * g1 + m20 * g2;
        gLinear[hw + p] = m01 * g0 + m11 * g1 + m21 * g2;
        gLinear[2 * hw + p] = m02 * g0 + m12 * g1 + m22 * g2;
      }
      if (ws) irfft2dPlanesAdjoint(gLinear, gParam, { ws, scale, gain: 1 / 4 });
      else gParam.set(gLinear);
    },
  };
}
