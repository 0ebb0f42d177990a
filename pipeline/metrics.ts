/**
 * Faithfulness metrics of saliency maps: the deletion and insertion curves of Petsiuk et al. 2018
 * ("RISE: Randomized Input Sampling for Explanation of Black-box Models",
 * https://arxiv.org/abs/1806.07421, section 4.1), and the random orders they are judged against.
 *
 * Deletion removes pixels, most salient first, `ceil(H·W / steps)` per step, replacing them by
 * the fill, and records the target's probability after each step; a faithful map makes the curve
 * fall fast, so its area (AUC) is small. Insertion starts from the filled picture and puts the
 * original pixels back in the same order; a faithful map makes it rise fast (large AUC). The AUC
 * is the trapezoid rule over the `steps + 1` points on a [0, 1] axis, as the authors' code
 * computes it. Every step of a curve is one row of a batched forward pass (`forwardMany`).
 *
 * Fills (named as LIME's `fill`): `zero` (0 in model-input space, i.e. the dataset's mean colour
 * after ImageNet normalisation — the authors' deletion substrate), `blur` (a Gaussian-blurred copy,
 * σ = `blurSigma`; the authors' insertion substrate), `mean` (the picture's per-channel mean), or
 * a constant. Web-standard only.
 *
 * @module
 */
import { gaussianBlur } from "../kernels/blur.ts";
import type { Random } from "../kernels/random.ts";
import type { Tensor } from "../kernels/tensor.ts";
import { forwardMany } from "./batching.ts";
import { LanternError } from "./errors.ts";
import { scoreOf, type ScoreOutput } from "./targets.ts";
import type { Model } from "./types.ts";

/** What removed pixels become: see the module documentation. */
export type MetricFill = "zero" | "blur" | "mean" | number;

/** Options of {@linkcode deletionCurve} and {@linkcode insertionCurve}. */
export interface CurveOptions {
  /**
   * Saliency of the image, `H·W` or `C·H·W` values (channels are summed per pixel); pixels are
   * taken in decreasing order, ties in raster order. Ignored when `order` is given.
   */
  readonly map?: ArrayLike<number>;
  /** An explicit pixel order (indices into the `H·W` plane, most important first). */
  readonly order?: readonly number[];
  /** Class whose score is tracked. */
  readonly target: number;
  /** Number of steps (default 50); the curve has `steps + 1` points. */
  readonly steps?: number;
  /** What removed pixels become (default `zero`). */
  readonly fill?: MetricFill;
  /** Blur standard deviation in pixels for `fill: "blur"` (default 5, the authors' σ). */
  readonly blurSigma?: number;
  /** Track the softmax probability (default, as the authors) or the raw score. */
  readonly output?: ScoreOutput;
  /** Rows per forward pass (default 16). */
  readonly batchSize?: number;
}

/** A deletion or insertion curve. */
export interface Curve {
  /** Share of pixels removed (deletion) or inserted (insertion) at each point. */
  readonly fractions: Float64Array;
  /** The target's score at each point. */
  readonly scores: Float64Array;
  /** Trapezoid area under `scores` over `fractions` in [0, 1]. */
  readonly auc: number;
}

/** Pixel order of a saliency map, most salient first (ties in raster order). */
export function saliencyOrder(map: ArrayLike<number>, plane: number): number[] {
  if (map.length % plane !== 0) {
    throw new LanternError(
      `Cannot order a saliency map of ${map.length} values: expected a multiple of ${plane} (H·W)`,
    );
  }
  const value = new Float64Array(plane);
  for (let k = 0; k < map.length; k++) value[k % plane] += map[k];
  return Array.from({ length: plane }, (_, p) => p).sort((a, b) => value[b] - value[a] || a - b);
}

/** A uniformly random pixel order (Fisher–Yates from `random`). */
export function randomOrder(plane: number, random: Random): number[] {
  const order = Array.from({ length: plane }, (_, p) => p);
  for (let p = plane - 1; p > 0; p--) {
    const q = Math.floor(random.uniform() * (p + 1));
    [order[p], order[q]] = [order[q], order[p]];
  }
  return order;
}

/**
 * A random order of whole segments: the segments of `labels` (values `0..count−1`) are
 * shuffled and their pixels listed segment by segment (raster order inside). The baseline of the
 * same granularity as a superpixel explanation such as LIME's.
 */
export function randomSegmentOrder(
  labels: ArrayLike<number>,
  options: { count: number; random: Random },
): number[] {
  const segments = randomOrder(options.count, options.random);
  const members: number[][] = Array.from({ length: options.count }, () => []);
  for (let p = 0; p < labels.length; p++) members[labels[p]].push(p);
  return segments.flatMap((s) => members[s]);
}

/** The picture every pixel becomes when removed, `[C·H·W]`. */
function substrate(x: Tensor, fill: MetricFill, sigma: number): Float32Array {
  const [, c, h, w] = x.dims;
  const plane = h * w;
  if (typeof fill === "number") return new Float32Array(c * plane).fill(fill);
  if (fill === "zero") return new Float32Array(c * plane);
  if (fill === "blur") return gaussianBlur(x, sigma).data;
  const out = new Float32Array(c * plane);
  for (let ch = 0; ch < c; ch++) {
    let sum = 0;
    for (let p = 0; p < plane; p++) sum += x.data[ch * plane + p];
    out.fill(sum / plane, ch * plane, (ch + 1) * plane);
  }
  return out;
}

async function curve(
  model: Model,
  input: Tensor,
  options: CurveOptions,
  insertion: boolean,
): Promise<Curve> {
  const [n, c, h, w] = input.dims;
  const what = insertion ? "an insertion" : "a deletion";
  if (input.dims.length !== 4 || n !== 1) {
    throw new LanternError(
      `Cannot measure ${what} curve: input shape is [${input.dims}], expected [1,C,H,W] — pass one image`,
    );
  }
  const plane = h * w;
  const order = options.order ?? (options.map ? saliencyOrder(options.map, plane) : undefined);
  if (!order) {
    throw new LanternError(
      `Cannot measure ${what} curve: no \`map\` or \`order\` given — pass one`,
    );
  }
  const steps = options.steps ?? 50;
  const per = Math.ceil(plane / steps);
  const base = substrate(input, options.fill ?? "zero", options.blurSigma ?? 5);
  // Deletion moves pixels from the input to the substrate; insertion the other way round.
  const [from, to] = insertion ? [base, input.data] : [input.data, base];
  const scores = new Float64Array(steps + 1);
  await forwardMany(model, {
    count: steps + 1,
    inputDims: [c, h, w],
    fill(k, into) {
      into.set(from);
      const end = Math.min(k * per, order.length);
      for (let q = 0; q < end; q++) {
        const p = order[q];
        for (let ch = 0; ch < c; ch++) into[ch * plane + p] = to[ch * plane + p];
      }
    },
    consume(k, row) {
      scores[k] = scoreOf(row, options.output ?? "probability")(options.target);
    },
  }, { batchSize: options.batchSize ?? 16 });
  const fractions = Float64Array.from(
    { length: steps + 1 },
    (_, k) => Math.min(k * per, plane) / plane,
  );
  // The authors' trapezoid on an even axis: (Σ s − s₀/2 − s_last/2) / steps.
  let auc = 0;
  for (let k = 0; k <= steps; k++) auc += scores[k];
  auc = (auc - scores[0] / 2 - scores[steps] / 2) / steps;
  return { fractions, scores, auc };
}

/**
 * The deletion curve of one image `input` `[1,C,H,W]`: pixels removed in the order of
 * `options.map` (or `options.order`), replaced by `options.fill`.
 */
export function deletionCurve(
  model: Model,
  input: Tensor,
  options: CurveOptions,
): Promise<Curve> {
  return curve(model, input, options, false);
}

/**
 * The insertion curve of one image `input` `[1,C,H,W]`: starting from the fill, the original
 * pixels come back in the order of `options.map` (or `options.order`).
 */
export function insertionCurve(
  model: Model,
  input: Tensor,
  options: CurveOptions,
): Promise<Curve> {
  return curve(model, input, options, true);
}

/** Area under the deletion curve (lower is more faithful). */
export async function deletionAuc(
  model: Model,
  input: Tensor,
  options: CurveOptions,
): Promise<number> {
  return (await deletionCurve(model, input, options)).auc;
}

/** Area under the insertion curve (higher is more faithful). */
export async function insertionAuc(
  model: Model,
  input: Tensor,
  options: CurveOptions,
): Promise<number> {
  return (await insertionCurve(model, input, options)).auc;
}
