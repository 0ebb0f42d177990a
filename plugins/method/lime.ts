/**
 * `lime`: Local Interpretable Model-agnostic Explanations for images (Ribeiro et al. 2016, "Why
 * Should I Trust You?", https://arxiv.org/abs/1602.04938, sections 3.3–3.4), as the reference
 * `lime_image.LimeImageExplainer` computes it:
 *
 * 1. segment the picture into superpixels (quickshift with kernel 4, max distance 200, ratio 0.2,
 *    or SLIC);
 * 2. draw `samples` binary vectors z ∈ {0,1}^d (the first all ones) and forward x with the
 *    superpixels where z = 0 replaced by the fill (each superpixel's mean colour, a blurred copy,
 *    or a constant);
 * 3. weight each sample by π(z) = sqrt(exp(−D(z, 1)² / σ²)), D the cosine distance, σ = 0.25;
 * 4. select features (LIME's `auto`, `highest_weights`, `forward_selection`, `lasso_path`,
 *    `none`) and fit g(z) = β₀ + Σ_j β_j z_j by weighted ridge regression (α = 1) to the
 *    target's probability (`LimeBase.explain_instance_with_data`).
 *
 * Output `[N,C,H,W]`: each pixel carries its superpixel's β (0 for unselected superpixels). The
 * superpixel table (id, weight, pixel count, bounding box), the surrogate's R² (`score`),
 * intercept and prediction at x are in `info`, one entry per row.
 *
 * @module
 */
import { z } from "zod";
import { gaussianBlur } from "../../kernels/blur.ts";
import { quickshift, type RgbImage, type Segmentation } from "../../kernels/quickshift.ts";
import { Random } from "../../kernels/random.ts";
import {
  type Design,
  FEATURE_SELECTIONS,
  type FeatureSelection,
  selectFeatures,
  weightedRidge,
} from "../../kernels/ridge.ts";
import { slic } from "../../kernels/slic.ts";
import { batchItem, tensor } from "../../kernels/tensor.ts";
import { forwardMany } from "../../pipeline/batching.ts";
import { explanation, since } from "../../pipeline/explanation.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import {
  outputParam,
  resolveTargetRows,
  rowsOfImage,
  scoreOf,
  targetParam,
} from "../../pipeline/targets.ts";
import type { Batch } from "../../pipeline/types.ts";

/** Parameters of `lime`. */
export const limeParams = z.object({
  target: targetParam,
  /** Perturbed samples per image (LIME's `num_samples`). */
  samples: z.number().int().min(2).default(1000),
  /** Superpixel algorithm. */
  segmentation: z.enum(["quickshift", "slic"]).default("quickshift"),
  /** Quickshift: Gaussian kernel width. */
  kernel_size: z.number().min(1).default(4),
  /** Quickshift: longest link kept. */
  max_dist: z.number().positive().default(200),
  /** Quickshift: weight of colour against position. */
  ratio: z.number().min(0).max(1).default(0.2),
  /** SLIC: approximate number of segments. */
  n_segments: z.number().int().positive().default(100),
  /** SLIC: balance of space against colour. */
  compactness: z.number().positive().default(10),
  /**
   * What switched-off superpixels show: `mean` (each superpixel's mean, LIME's default), `blur`
   * (a Gaussian-blurred copy), or a constant in model-input space.
   */
  fill: z.union([z.enum(["mean", "blur"]), z.number()]).default("mean"),
  /** Blur standard deviation in pixels for `fill: blur`. */
  blur_sigma: z.number().positive().default(5),
  /** Width σ of the exponential kernel on cosine distance. */
  kernel_width: z.number().positive().default(0.25),
  /** Ridge penalty of the surrogate. */
  alpha: z.number().nonnegative().default(1),
  /**
   * LIME's `feature_selection`: `auto` (forward selection for at most 6 features, else highest
   * weights), `highest_weights`, `forward_selection`, `lasso_path`, or `none`.
   */
  feature_selection: z.enum(FEATURE_SELECTIONS).default("auto"),
  /** Superpixels the surrogate may use, LIME's `num_features` (default: all). */
  num_features: z.number().int().positive().optional(),
  /** Explain the softmax probability (LIME's usual classifier output) or the raw score. */
  output: outputParam,
  /** Seeds segmentation tie-breaks and sampling. */
  seed: z.number().int().default(0),
  /** Perturbed inputs per forward pass. */
  internal_batch: z.number().int().positive().default(32),
}).strict();

/** The parsed parameters of `lime`. */
export type LimeParams = z.infer<typeof limeParams>;

/** One superpixel of the table in `info.superpixels`. */
export interface Superpixel {
  /** Segment label. */
  readonly id: number;
  /** Surrogate coefficient (0 when not selected). */
  readonly weight: number;
  /** Pixel count. */
  readonly pixels: number;
  /** Bounding box `[y0, x0, y1, x1]`, end exclusive. */
  readonly bbox: readonly [number, number, number, number];
}

/**
 * The picture a segmenter sees for image `index`: the batch's decoded image when it matches the
 * input size (LIME segments the photo, not the normalised tensor), else the input tensor
 * min–max scaled to [0, 1]; gray inputs are repeated into RGB as LIME's `gray2rgb` does.
 */
export function segmentationImage(batch: Batch, index: number): RgbImage {
  const [, c, h, w] = batch.tensor.dims;
  const img = batch.images?.[index];
  const data = new Float64Array(h * w * 3);
  if (img && img.width === w && img.height === h) {
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < 3; k++) data[3 * p + k] = img.data[4 * p + k] / 255;
    }
    return { width: w, height: h, data };
  }
  const x = batchItem(batch.tensor, index).data;
  let lo = Infinity, hi = -Infinity;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const scale = hi > lo ? 1 / (hi - lo) : 0;
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) data[3 * p + k] = (x[(c === 3 ? k : 0) * h * w + p] - lo) * scale;
  }
  return { width: w, height: h, data };
}

/** Segment `image` as `params` ask. */
export function segmentImage(image: RgbImage, params: LimeParams): Segmentation {
  return params.segmentation === "slic"
    ? slic(image, { nSegments: params.n_segments, compactness: params.compactness })
    : quickshift(image, {
      kernelSize: params.kernel_size,
      maxDist: params.max_dist,
      ratio: params.ratio,
      seed: params.seed,
    });
}

/** The input with every superpixel switched off, `[C,H,W]`. */
function fillImage(x: Float32Array, seg: Segmentation, dims: number[], params: LimeParams) {
  const [c, h, w] = dims;
  const plane = h * w;
  if (typeof params.fill === "number") return new Float32Array(x.length).fill(params.fill);
  if (params.fill === "blur") {
    return gaussianBlur(tensor(x, [1, c, h, w]), params.blur_sigma).data;
  }
  const out = new Float32Array(x.length);
  const count = new Float64Array(seg.count);
  for (let p = 0; p < plane; p++) count[seg.labels[p]]++;
  for (let ch = 0; ch < c; ch++) {
    const sum = new Float64Array(seg.count);
    for (let p = 0; p < plane; p++) sum[seg.labels[p]] += x[ch * plane + p];
    for (let p = 0; p < plane; p++) out[ch * plane + p] = sum[seg.labels[p]] / count[seg.labels[p]];
  }
  return out;
}

/**
 * LIME's sample weights π(z) = sqrt(exp(−D(z, z₀)² / σ²)) with D the cosine distance of each row
 * of the 0/1 design to its first row (`pairwise_distances(data, data[0], metric="cosine")` in
 * `lime_image`; an all-zero row is at distance 1, as scikit-learn's normalisation makes it).
 */
export function limeWeights(design: Design, kernelWidth = 0.25): Float64Array {
  const { rows, cols, data } = design;
  let n0 = 0;
  for (let j = 0; j < cols; j++) n0 += data[j] * data[j];
  const out = new Float64Array(rows);
  for (let k = 0; k < rows; k++) {
    let dot = 0, nk = 0;
    for (let j = 0; j < cols; j++) {
      dot += data[k * cols + j] * data[j];
      nk += data[k * cols + j] ** 2;
    }
    const dist = nk > 0 && n0 > 0 ? 1 - dot / Math.sqrt(nk * n0) : 1;
    out[k] = Math.sqrt(Math.exp(-(dist * dist) / kernelWidth ** 2));
  }
  return out;
}

/** Options of {@linkcode explainWithData}. */
export interface ExplainWithDataOptions {
  /** Sample weights (from {@linkcode limeWeights}). */
  readonly weights: ArrayLike<number>;
  /** Ridge penalty of the surrogate (LIME: 1). */
  readonly alpha?: number;
  /** LIME's `num_features` (default all columns). */
  readonly numFeatures?: number;
  /** LIME's `feature_selection` (default `auto`). */
  readonly featureSelection?: FeatureSelection;
}

/** The surrogate of {@linkcode explainWithData}. */
export interface LimeSurrogate {
  /** One coefficient per column, 0 for columns not selected. */
  readonly coef: Float64Array;
  /** Selected columns. */
  readonly used: readonly number[];
  readonly intercept: number;
  /** Weighted R² of the surrogate on the samples. */
  readonly score: number;
  /** The surrogate's prediction at the first row (the unperturbed input). */
  readonly localPred: number;
}

/**
 * LIME's `LimeBase.explain_instance_with_data`: select features, then fit a weighted ridge
 * (α = 1, intercept) of `y` (one class's scores of the samples) on the selected columns.
 */
export function explainWithData(
  design: Design,
  y: ArrayLike<number>,
  options: ExplainWithDataOptions,
): LimeSurrogate {
  const used = selectFeatures(design, y, {
    weights: options.weights,
    count: options.numFeatures ?? design.cols,
    method: options.featureSelection ?? "auto",
  });
  const fit = weightedRidge(design, y, {
    weights: options.weights,
    alpha: options.alpha ?? 1,
    columns: used,
  });
  const coef = new Float64Array(design.cols);
  let localPred = fit.intercept;
  used.forEach((j, q) => {
    coef[j] = fit.coef[q];
    localPred += fit.coef[q] * design.data[j];
  });
  return { coef, used, intercept: fit.intercept, score: fit.score, localPred };
}

/** The superpixel table of a segmentation with its weights. */
function superpixelTable(seg: Segmentation, weights: Float64Array): Superpixel[] {
  const boxes = Array.from({ length: seg.count }, () => [Infinity, Infinity, -1, -1]);
  const pixels = new Array(seg.count).fill(0);
  for (let y = 0; y < seg.height; y++) {
    for (let x = 0; x < seg.width; x++) {
      const l = seg.labels[y * seg.width + x];
      const b = boxes[l];
      pixels[l]++;
      b[0] = Math.min(b[0], y);
      b[1] = Math.min(b[1], x);
      b[2] = Math.max(b[2], y + 1);
      b[3] = Math.max(b[3], x + 1);
    }
  }
  return boxes.map((b, id) => ({
    id,
    weight: weights[id],
    pixels: pixels[id],
    bbox: [b[0], b[1], b[2], b[3]] as [number, number, number, number],
  }));
}

/** LIME with superpixel features and a weighted ridge surrogate. */
export const lime = defineMethod({
  name: "lime",
  description: "Superpixel surrogate model (Ribeiro et al. 2016), [N,C,H,W]",
  params: limeParams,
  async run({ model, batch, logits, progress }, params) {
    const rows = resolveTargetRows(params.target, logits);
    const [n, c, h, w] = batch.tensor.dims;
    const plane = h * w, per = c * plane;
    const out = new Float32Array(rows.targets.length * per);
    const info = {
      superpixels: [] as Superpixel[][],
      score: [] as number[],
      intercept: [] as number[],
      local_pred: [] as number[],
      segments: [] as number[],
    };
    const timings = { segmentation: 0, forward: 0, fit: 0 };
    const random = new Random(params.seed);
    const s = params.samples;
    for (let i = 0; i < n; i++) {
      const mine = rowsOfImage(rows, i);
      if (mine.length === 0) continue;
      let t0 = performance.now();
      const seg = segmentImage(segmentationImage(batch, i), params);
      timings.segmentation += since(t0);
      const d = seg.count;
      const x = batchItem(batch.tensor, i).data;
      const off = fillImage(x, seg, [c, h, w], params);
      // LIME's data matrix: uniform {0,1} per superpixel, the first row the unperturbed input.
      const z = new Float64Array(s * d);
      for (let k = 0; k < s * d; k++) z[k] = k < d ? 1 : random.nextUint32() >>> 31;
      const design = { rows: s, cols: d, data: z };
      const weights = limeWeights(design, params.kernel_width);
      const ys = mine.map(() => new Float64Array(s));
      t0 = performance.now();
      await forwardMany(model, {
        count: s,
        inputDims: [c, h, w],
        fill(k, into) {
          for (let p = 0; p < plane; p++) {
            const src = z[k * d + seg.labels[p]] ? x : off;
            for (let ch = 0; ch < c; ch++) into[ch * plane + p] = src[ch * plane + p];
          }
        },
        consume(k, scores) {
          const f = scoreOf(scores, params.output);
          mine.forEach((r, m) => ys[m][k] = f(rows.targets[r]));
        },
      }, {
        batchSize: params.internal_batch,
        progress: progress && ((done) => progress(i * s + done, n * s, "lime")),
      });
      timings.forward += since(t0);
      t0 = performance.now();
      mine.forEach((r, m) => {
        const fit = explainWithData(design, ys[m], {
          weights,
          alpha: params.alpha,
          numFeatures: params.num_features,
          featureSelection: params.feature_selection,
        });
        const beta = fit.coef;
        const map = out.subarray(r * per, (r + 1) * per);
        for (let p = 0; p < plane; p++) {
          const v = beta[seg.labels[p]];
          for (let ch = 0; ch < c; ch++) map[ch * plane + p] = v;
        }
        info.superpixels[r] = superpixelTable(seg, beta);
        info.score[r] = fit.score;
        info.intercept[r] = fit.intercept;
        info.local_pred[r] = fit.localPred;
        info.segments[r] = d;
      });
      timings.fit += since(t0);
    }
    return explanation(model, {
      method: "lime",
      rows,
      map: tensor(out, [rows.targets.length, c, h, w]),
      space: "input",
      timings,
      info,
    });
  },
});
