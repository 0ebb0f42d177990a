/**
 * Transformation robustness for feature visualization (Lucid's `lucid.optvis.transform`): each
 * step samples the image through a random pad–jitter–scale–rotate–jitter, so the optimum cannot
 * rely on pixel-exact patterns. The whole chain is one affine map from output to source pixel
 * coordinates, sampled bilinearly with a constant fill outside the image; its exact adjoint
 * scatters gradients back to the source pixels.
 *
 * @module
 */
import type { Random } from "./random.ts";

/** `source = m · [x, y] + t` for output pixel `(x, y)`; `m` is row-major `[a, b, c, d]`. */
export interface Affine {
  readonly m: readonly [number, number, number, number];
  readonly t: readonly [number, number];
}

/** Lucid's `standard_transforms` parameters. */
export interface TransformOptions {
  /** Constant padding (pixels) before the first jitter. */
  pad: number;
  /** First jitter (pixels). */
  jitter1: number;
  /** Scale factors to pick from. */
  scales: readonly number[];
  /** Rotation angles (degrees) to pick from. */
  angles: readonly number[];
  /** Second jitter (pixels). */
  jitter2: number;
}

/**
 * Lucid's `standard_transforms`: pad 12, jitter 8, scale from 1 + (i − 5)/50 for i in 0…10,
 * rotate by −10…10 degrees (with 0 five more times, as Lucid's list), jitter 4.
 */
export const STANDARD_TRANSFORMS: TransformOptions = {
  pad: 12,
  jitter1: 8,
  scales: Array.from({ length: 11 }, (_, i) => 1 + (i - 5) / 50),
  angles: [...Array.from({ length: 21 }, (_, i) => i - 10), 0, 0, 0, 0, 0],
  jitter2: 4,
};

/** The identity map (no transformation). */
export const IDENTITY: Affine = { m: [1, 0, 0, 1], t: [0, 0] };

/**
 * Draw one transformation of an `h`×`w` image as an affine map from output to source pixels.
 *
 * Lucid pads by `pad`, crops `jitter1` smaller at a random offset, rescales, rotates about the
 * centre, and crops `jitter2` smaller again, feeding the model whatever size results. Our models
 * take a fixed size, so the output is the central `h`×`w` window of that chain (padded with the
 * fill where it is smaller); pad and crops then reduce to translations about the centre.
 */
export function randomAffine(
  random: Random,
  size: { h: number; w: number },
  options: TransformOptions = STANDARD_TRANSFORMS,
): Affine {
  const pick = <T>(list: readonly T[]) => list[Math.floor(random.uniform() * list.length)];
  const offset = (d: number) => Math.floor(random.uniform() * (d + 1)) - d / 2;
  const j1x = offset(options.jitter1), j1y = offset(options.jitter1);
  const s = pick(options.scales);
  const theta = (pick(options.angles) * Math.PI) / 180;
  const j2x = offset(options.jitter2), j2y = offset(options.jitter2);
  // source − c = R(−θ)/s · (out − c + j2) + j1, about the image centre c.
  const cos = Math.cos(theta) / s, sin = Math.sin(theta) / s;
  const m: [number, number, number, number] = [cos, sin, -sin, cos];
  const cx = (size.w - 1) / 2, cy = (size.h - 1) / 2;
  const ux = -cx + j2x, uy = -cy + j2y;
  return {
    m,
    t: [cx + j1x + m[0] * ux + m[1] * uy, cy + j1y + m[2] * ux + m[3] * uy],
  };
}

/** The four bilinear taps of each output pixel: source index (−1 outside) and weight. */
interface Taps {
  readonly h: number;
  readonly w: number;
  readonly index: Int32Array;
  readonly weight: Float32Array;
}

// A step samples and then scatters through the same affine: compute its taps once.
const tapCache = new WeakMap<Affine, Taps>();

function bilinearTaps(h: number, w: number, affine: Affine): Taps {
  const cached = tapCache.get(affine);
  if (cached && cached.h === h && cached.w === w) return cached;
  const [a, b, cc, d] = affine.m, [tx, ty] = affine.t;
  const index = new Int32Array(4 * h * w);
  const weight = new Float32Array(4 * h * w);
  for (let oy = 0; oy < h; oy++) {
    for (let ox = 0; ox < w; ox++) {
      const sx = a * ox + b * oy + tx, sy = cc * ox + d * oy + ty;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      const o = 4 * (oy * w + ox);
      const inX0 = x0 >= 0 && x0 < w, inX1 = x0 + 1 >= 0 && x0 + 1 < w;
      const inY0 = y0 >= 0 && y0 < h, inY1 = y0 + 1 >= 0 && y0 + 1 < h;
      const i00 = y0 * w + x0;
      index[o] = inX0 && inY0 ? i00 : -1;
      index[o + 1] = inX1 && inY0 ? i00 + 1 : -1;
      index[o + 2] = inX0 && inY1 ? i00 + w : -1;
      index[o + 3] = inX1 && inY1 ? i00 + w + 1 : -1;
      weight[o] = (1 - fx) * (1 - fy);
      weight[o + 1] = fx * (1 - fy);
      weight[o + 2] = (1 - fx) * fy;
      weight[o + 3] = fx * fy;
    }
  }
  const taps = { h, w, index, weight };
  tapCache.set(affine, taps);
  return taps;
}

/**
 * Sample `src` `[C, h, w]` through `affine` into `out` `[C, h, w]`, bilinearly; neighbours outside
 * the image read `fill` (Lucid pads with 0.5).
 */
export function sampleAffine(
  src: Float32Array,
  out: Float32Array,
  options: { c: number; h: number; w: number; affine: Affine; fill: number },
): void {
  const { c, h, w, fill } = options;
  const { index, weight } = bilinearTaps(h, w, options.affine);
  const hw = h * w;
  for (let ch = 0; ch < c; ch++) {
    const base = ch * hw;
    for (let o = 0, k = 0; o < hw; o++, k += 4) {
      const i0 = index[k], i1 = index[k + 1], i2 = index[k + 2], i3 = index[k + 3];
      // Same summation order as tap by tap, so results do not depend on the fast path.
      out[base + o] = (i0 | i1 | i2 | i3) >= 0
        ? weight[k] * src[base + i0] + weight[k + 1] * src[base + i1] +
          weight[k + 2] * src[base + i2] + weight[k + 3] * src[base + i3]
        : weight[k] * (i0 >= 0 ? src[base + i0] : fill) +
          weight[k + 1] * (i1 >= 0 ? src[base + i1] : fill) +
          weight[k + 2] * (i2 >= 0 ? src[base + i2] : fill) +
          weight[k + 3] * (i3 >= 0 ? src[base + i3] : fill);
    }
  }
}

/**
 * The adjoint of {@linkcode sampleAffine} in `src` (the fill is a constant): scatter `gOut`
 * `[C, h, w]` into `gSrc` `[C, h, w]`, which is overwritten.
 */
export function sampleAffineAdjoint(
  gOut: Float32Array,
  gSrc: Float32Array,
  options: { c: number; h: number; w: number; affine: Affine },
): void {
  const { c, h, w } = options;
  const { index, weight } = bilinearTaps(h, w, options.affine);
  const hw = h * w;
  gSrc.fill(0);
  for (let ch = 0; ch < c; ch++) {
    const base = ch * hw;
    for (let o = 0, k = 0; o < hw; o++, k += 4) {
      const g = gOut[base + o];
      const i0 = index[k], i1 = index[k + 1], i2 = index[k + 2], i3 = index[k + 3];
      if (i0 >= 0) gSrc[base + i0] += weight[k] * g;
      if (i1 >= 0) gSrc[base + i1] += weight[k + 1] * g;
      if (i2 >= 0) gSrc[base + i2] += weight[k + 2] * g;
      if (i3 >= 0) gSrc[base + i3] += weight[k + 3] * g;
    }
  }
}
