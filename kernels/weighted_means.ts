/**
 * Weighted means of a design matrix's columns and of the response, the centring step of every
 * weighted linear fit here (scikit-learn's `_preprocess_data` with `sample_weight`): the ridge
 * surrogate and the lasso-path feature selection share it, summing in the same order.
 *
 * @module
 */
import type { Design } from "./ridge.ts";

/**
 * ȳ = Σ wᵢyᵢ / Σ wᵢ and x̄ⱼ = Σ wᵢxᵢⱼ / Σ wᵢ over the rows of `design`, for the columns in
 * `options.columns` (default all, in order); unit weights when `options.weights` is absent.
 */
export function weightedMeans(
  design: Design,
  y: ArrayLike<number>,
  options: { weights?: ArrayLike<number>; columns?: readonly number[] } = {},
): { ymean: number; xmean: Float64Array } {
  const { rows, cols, data } = design;
  const columns = options.columns ?? Array.from({ length: cols }, (_, j) => j);
  const d = columns.length;
  const w = options.weights;
  let wsum = 0, ymean = 0;
  const xmean = new Float64Array(d);
  for (let i = 0; i < rows; i++) {
    const wi = w ? w[i] : 1;
    wsum += wi;
    ymean += wi * y[i];
    for (let j = 0; j < d; j++) xmean[j] += wi * data[i * cols + columns[j]];
  }
  ymean /= wsum;
  for (let j = 0; j < d; j++) xmean[j] /= wsum;
  return { ymean, xmean };
}
