/**
 * Display normalizations of attribution maps, and channel reduction of input-space maps.
 *
 * Every normalization maps one image's values into [0, 1] for a colormap; batch
 * helpers apply it to each image on its own, so one bright image never dims another.
 * Web-standard only.
 *
 * @module
 */
import { sizeOf, type Tensor, tensor } from "./tensor.ts";

/** Names of the display normalizations. */
export const NORMALIZATIONS = ["minmax", "abs", "p99", "signed"] as const;
/** One of {@linkcode NORMALIZATIONS}. */
export type Normalization = typeof NORMALIZATIONS[number];

/** Names of the channel reductions for `[N,C,H,W]` input-space maps. */
export const CHANNEL_REDUCTIONS = ["sum", "abs-sum", "max-abs"] as const;
/** One of {@linkcode CHANNEL_REDUCTIONS}. */
export type ChannelReduction = typeof CHANNEL_REDUCTIONS[number];

/**
 * `(x - min) / (max - min)`: the smallest value becomes 0 and the largest 1. Keeps the sign
 * structure only as an offset, so it suits maps that are already non-negative (CAMs after
 * ReLU, occlusion drops). A constant map becomes all 0.
 */
export function normalizeMinMax(values: Float32Array): Float32Array {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const out = new Float32Array(values.length);
  const span = hi - lo;
  if (!(span > 0)) return out;
  for (let i = 0; i < values.length; i++) out[i] = (values[i] - lo) / span;
  return out;
}

/**
 * `|x| / max|x|`: magnitude regardless of sign, 0 stays 0. The usual display of gradient
 * saliency. An all-zero map stays 0.
 */
export function normalizeAbs(values: Float32Array): Float32Array {
  let hi = 0;
  for (const v of values) hi = Math.max(hi, Math.abs(v));
  const out = new Float32Array(values.length);
  if (!(hi > 0)) return out;
  for (let i = 0; i < values.length; i++) out[i] = Math.abs(values[i]) / hi;
  return out;
}

/**
 * Captum's threshold for "clip the top `percentile`%": sort the (non-negative) values, and return
 * the first one at which their running sum reaches `percentile`% of the total. This is a share of
 * the total mass, not an order statistic (`_cumulative_sum_threshold` in
 * `captum/attr/_utils/visualization.py`). Returns 0 for an empty or all-zero input.
 */
export function cumulativeSumThreshold(values: Float32Array, percentile: number): number {
  if (!(percentile >= 0 && percentile <= 100)) {
    throw new Error(`Cannot compute threshold: percentile is ${percentile}, expected 0 to 100`);
  }
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  let total = 0;
  for (const v of sorted) total += v;
  const goal = total * 0.01 * percentile;
  let sum = 0;
  for (const v of sorted) {
    sum += v;
    if (sum >= goal) return v;
  }
  return sorted[sorted.length - 1];
}

/** Options of {@linkcode normalizeP99}. */
export interface P99Options {
  /** Share of the total |x| mass treated as outliers and clipped, in percent (default 1). */
  readonly outlierPercent?: number;
}

/**
 * `min(|x| / t, 1)` with `t` the {@linkcode cumulativeSumThreshold} of `|x|` at
 * `100 - outlierPercent` (99 by default): what Captum's `visualize_image_attr` does for
 * `sign="absolute_value"` with `outlier_perc=1` (`_normalize_scale` then a clip). A few extreme
 * pixels then cannot wash out the rest of the map. An all-zero map stays 0.
 */
export function normalizeP99(values: Float32Array, options: P99Options = {}): Float32Array {
  const abs = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) abs[i] = Math.abs(values[i]);
  const t = cumulativeSumThreshold(abs, 100 - (options.outlierPercent ?? 1));
  const out = new Float32Array(values.length);
  if (!(t > 0)) return out;
  for (let i = 0; i < values.length; i++) out[i] = Math.min(abs[i] / t, 1);
  return out;
}

/**
 * `(x / max|x| + 1) / 2`: diverging display where 0 maps to 0.5, the strongest negative value
 * (or its mirror) to 0 and the strongest positive to 1; use with a diverging colormap. An
 * all-zero map becomes all 0.5.
 */
export function normalizeSigned(values: Float32Array): Float32Array {
  let hi = 0;
  for (const v of values) hi = Math.max(hi, Math.abs(v));
  const out = new Float32Array(values.length).fill(0.5);
  if (!(hi > 0)) return out;
  for (let i = 0; i < values.length; i++) out[i] = (values[i] / hi + 1) / 2;
  return out;
}

/** Normalize one image's values with the named normalization (see the `normalize*` functions). */
export function normalizeValues(values: Float32Array, mode: Normalization): Float32Array {
  switch (mode) {
    case "minmax":
      return normalizeMinMax(values);
    case "abs":
      return normalizeAbs(values);
    case "p99":
      return normalizeP99(values);
    case "signed":
      return normalizeSigned(values);
    default:
      throw new Error(
        `Cannot normalize map: unknown normalization "${mode}", expected one of ${
          NORMALIZATIONS.join(", ")
        }`,
      );
  }
}

/** Normalize each batch item of a CPU tensor on its own; dims and layout are kept. */
export function normalizeBatch(t: Tensor, mode: Normalization): Tensor {
  const n = t.dims[0] ?? 1;
  const per = n ? t.data.length / n : 0;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < n; i++) {
    out.set(normalizeValues(t.data.subarray(i * per, (i + 1) * per), mode), i * per);
  }
  return tensor(out, t.dims, t.layout);
}

/**
 * The reduction the heatmap uses when none is given: `sum` for `signed` display, so positive
 * and negative evidence survive; otherwise `abs-sum`, the L1 norm over colour channels, so
 * channels of opposite sign add up instead of cancelling. (Captum's `visualize_image_attr` sums
 * signed channels first and takes |·| after; choose `sum` with `abs` or `p99` to get that.)
 */
export function defaultReduction(mode: Normalization): ChannelReduction {
  return mode === "signed" ? "sum" : "abs-sum";
}

/**
 * Reduce the channel axis of an `[N,C,H,W]` CPU tensor to `[N,1,H,W]`:
 * - `sum`: `Σ_c x`, signed (Integrated Gradients' completeness is kept per pixel);
 * - `abs-sum`: `Σ_c |x|`;
 * - `max-abs`: `max_c |x|`, the saliency map of Simonyan et al. (2014).
 */
export function reduceChannels(t: Tensor, mode: ChannelReduction): Tensor {
  if (t.dims.length !== 4) {
    throw new Error(`Cannot reduce channels: map has dims [${t.dims}], expected [N,C,H,W]`);
  }
  const [n, c, h, w] = t.dims;
  const plane = h * w;
  const out = new Float32Array(sizeOf([n, 1, h, w]));
  for (let b = 0; b < n; b++) {
    const dst = out.subarray(b * plane, (b + 1) * plane);
    for (let k = 0; k < c; k++) {
      const src = t.data.subarray((b * c + k) * plane, (b * c + k + 1) * plane);
      switch (mode) {
        case "sum":
          for (let i = 0; i < plane; i++) dst[i] += src[i];
          break;
        case "abs-sum":
          for (let i = 0; i < plane; i++) dst[i] += Math.abs(src[i]);
          break;
        case "max-abs":
          for (let i = 0; i < plane; i++) dst[i] = Math.max(dst[i], Math.abs(src[i]));
          break;
        default:
          throw new Error(
            `Cannot reduce channels: unknown reduction "${mode}", expected one of ${
              CHANNEL_REDUCTIONS.join(", ")
            }`,
          );
      }
    }
  }
  return tensor(out, [n, 1, h, w], t.layout);
}
