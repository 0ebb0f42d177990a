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

/**
 * Sample `src` `[C, h, w]` through `affine` into `out` `[C, h, w]`, bilinearly; neighbours outside
 * the image read `fill` (Lucid pads with 0.5).
 */
export function sampleAffine(
  src: Float32Array,
  out: Float32Array,
  options: { c: number; h: number; w: number; affine: Affine; fill: number },
): void {
  const { c, h, w, affine, fill } = options;
  const [a, b, cc, d] = affine.m, [tx, ty] = affine.t;
  const hw = h * w;
  for (let oy = 0; oy < h; oy++) {
    for (let ox = 0; ox < w; ox++) {
      const sx = a * ox + b * oy + tx, sy = cc * ox + d * oy + ty;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      const in00 = x0 >= 0 && x0 < w && y0 >= 0 && y0 < h;
      const in01 = x0 + 1 >= 0 && x0 + 1 < w && y0 >= 0 && y0 < h;
      const in10 = x0 >= 0 && x0 < w && y0 + 1 >= 0 && y0 + 1 < h;
      const in11 = x0 + 1 >= 0 && x0 + 1 < w && y0 + 1 >= 0 && y0 + 1 < h;
      const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
      const p = y0 * w + x0, o = oy * w + ox;
      for (let ch = 0; ch < c; ch++) {
        const base = ch * hw;
        out[base + o] = w00 * (in00 ? src[base + p] : fill) +
          w01 * (in01 ? src[base + p + 1] : fill) +
          w10 * (in10 ? src[base + p + w] : fill) +
          w11 * (in11 ? src[base + p + w + 1] : fill);
      }
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
  const { c, h, w, affine } = options;
  const [a, b, cc, d] = affine.m, [tx, ty] = affine.t;
  const hw = h * w;
  gSrc.fill(0);
  for (let oy = 0; oy < h; oy++) {
    for (let ox = 0; ox < w; ox++) {
      const sx = a * ox + b * oy + tx, sy = cc * ox + d * oy + ty;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      const in00 = x0 >= 0 && x0 < w && y0 >= 0 && y0 < h;
      const in01 = x0 + 1 >= 0 && x0 + 1 < w && y0 >= 0 && y0 < h;
      const in10 = x0 >= 0 && x0 < w && y0 + 1 >= 0 && y0 + 1 < h;
      const in11 = x0 + 1 >= 0 && x0 + 1 < w && y0 + 1 >= 0 && y0 + 1 < h;
      const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
      const p = y0 * w + x0, o = oy * w + ox;
      for (let ch = 0; ch < c; ch++) {
        const base = ch * hw, g = gOut[base + o];
        if (in00) gSrc[base + p] += w00 * g;
        if (in01) gSrc[base + p + 1] += w01 * g;
        if (in10) gSrc[base + p + w] += w10 * g;
        if (in11) gSrc[base + p + w + 1] += w11 * g;
      }
    }
  }
}
