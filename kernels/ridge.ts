/**
 * Weighted ridge regression, its weighted R², and LIME's feature selection — the surrogate model
 * of LIME (Ribeiro et al. 2016, "Why Should I Trust You?", https://arxiv.org/abs/1602.04938,
 * Eq. 2 with the locally weighted square loss of section 3.4).
 *
 * The fit equals scikit-learn's `Ridge(alpha, fit_intercept=True).fit(X, y, sample_weight=w)`:
 * X and y are centred on their w-weighted means (so the intercept is not penalised) and
 *
 *   β = (Xcᵀ W Xc + α I)⁻¹ Xcᵀ W yc,   intercept = ȳ_w − x̄_wᵀ β.
 *
 * Web-standard only.
 *
 * @module
 */
import { lassoPathSelect } from "./lasso_path.ts";
import { weightedMeans } from "./weighted_means.ts";

/** A dense design matrix, row-major. */
export interface Design {
  readonly rows: number;
  readonly cols: number;
  /** `rows·cols` values. */
  readonly data: Float64Array | Float32Array;
}

/** A fitted linear model. */
export interface RidgeFit {
  /** One coefficient per used column (in the order of `columns`). */
  readonly coef: Float64Array;
  readonly intercept: number;
  /** Weighted coefficient of determination on the training data (scikit-learn's `score`). */
  readonly score: number;
}

/** Options of {@linkcode weightedRidge}. */
export interface RidgeOptions {
  /** Sample weights (default all 1). */
  readonly weights?: ArrayLike<number>;
  /** L2 penalty (default 1, LIME's). */
  readonly alpha?: number;
  /** Columns of the design to use (default all). */
  readonly columns?: readonly number[];
}

/** Fit a weighted ridge regression of `y` on `design`. */
export function weightedRidge(
  design: Design,
  y: ArrayLike<number>,
  options: RidgeOptions = {},
): RidgeFit {
  const { rows, cols, data } = design;
  const columns = options.columns ?? Array.from({ length: cols }, (_, j) => j);
  const d = columns.length;
  const alpha = options.alpha ?? 1;
  const wt = (i: number) => options.weights ? options.weights[i] : 1;
  const { ymean, xmean } = weightedMeans(design, y, { weights: options.weights, columns });
  const a = new Float64Array(d * d), b = new Float64Array(d);
  const xc = new Float64Array(d);
  for (let i = 0; i < rows; i++) {
    const wi = wt(i);
    for (let j = 0; j < d; j++) xc[j] = data[i * cols + columns[j]] - xmean[j];
    const yc = y[i] - ymean;
    for (let j = 0; j < d; j++) {
      const wx = wi * xc[j];
      b[j] += wx * yc;
      for (let k = j; k < d; k++) a[j * d + k] += wx * xc[k];
    }
  }
  for (let j = 0; j < d; j++) {
    a[j * d + j] += alpha;
    for (let k = 0; k < j; k++) a[j * d + k] = a[k * d + j];
  }
  const coef = solve(a, b, d);
  let intercept = ymean;
  for (let j = 0; j < d; j++) intercept -= xmean[j] * coef[j];
  let ssRes = 0, ssTot = 0;
  for (let i = 0; i < rows; i++) {
    let pred = intercept;
    for (let j = 0; j < d; j++) pred += data[i * cols + columns[j]] * coef[j];
    ssRes += wt(i) * (y[i] - pred) ** 2;
    ssTot += wt(i) * (y[i] - ymean) ** 2;
  }
  return { coef, intercept, score: ssTot > 0 ? 1 - ssRes / ssTot : ssRes > 0 ? 0 : 1 };
}

// Gaussian elimination with partial pivoting; a singular pivot (alpha 0, collinear columns)
// gives that coefficient 0, as a minimum-norm solver would for an all-zero column.
function solve(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const m = Float64Array.from(a), v = Float64Array.from(b);
  const x = new Float64Array(d);
  const singular = new Uint8Array(d);
  for (let col = 0; col < d; col++) {
    let piv = col;
    for (let r = col + 1; r < d; r++) {
      if (Math.abs(m[r * d + col]) > Math.abs(m[piv * d + col])) piv = r;
    }
    if (Math.abs(m[piv * d + col]) < 1e-12) {
      singular[col] = 1;
      continue;
    }
    if (piv !== col) {
      for (let k = 0; k < d; k++) {
        [m[col * d + k], m[piv * d + k]] = [m[piv * d + k], m[col * d + k]];
      }
      [v[col], v[piv]] = [v[piv], v[col]];
    }
    for (let r = col + 1; r < d; r++) {
      const f = m[r * d + col] / m[col * d + col];
      if (f === 0) continue;
      for (let k = col; k < d; k++) m[r * d + k] -= f * m[col * d + k];
      v[r] -= f * v[col];
    }
  }
  for (let col = d - 1; col >= 0; col--) {
    if (singular[col]) continue;
    let s = v[col];
    for (let k = col + 1; k < d; k++) s -= m[col * d + k] * x[k];
    x[col] = s / m[col * d + col];
  }
  return x;
}

/** LIME's `feature_selection` choices. */
export const FEATURE_SELECTIONS = [
  "auto",
  "highest_weights",
  "forward_selection",
  "lasso_path",
  "none",
] as const;
/** One of {@linkcode FEATURE_SELECTIONS}. */
export type FeatureSelection = typeof FEATURE_SELECTIONS[number];

/** Options of {@linkcode selectFeatures}. */
export interface SelectOptions {
  /** Sample weights. */
  readonly weights?: ArrayLike<number>;
  /** How many columns to keep. */
  readonly count: number;
  /** LIME's rule; `auto` is forward selection for at most 6 features, else highest weights. */
  readonly method: FeatureSelection;
}

/**
 * Pick columns as LIME's `LimeBase.feature_selection` does: `highest_weights` ranks |β| of a
 * ridge fit with α = 0.01 on all columns (the unperturbed row is all ones); `forward_selection`
 * greedily adds the column that most raises the weighted R² of an unpenalised fit;
 * `lasso_path` keeps the nonzero coefficients of the last point of the weighted lasso path with at
 * most `count` of them (see {@linkcode lassoPathSelect}).
 */
export function selectFeatures(
  design: Design,
  y: ArrayLike<number>,
  options: SelectOptions,
): number[] {
  const all = Array.from({ length: design.cols }, (_, j) => j);
  const count = Math.min(options.count, design.cols);
  const method = options.method === "auto"
    ? (count <= 6 ? "forward_selection" : "highest_weights")
    : options.method;
  if (method === "lasso_path") {
    return lassoPathSelect(design, y, { weights: options.weights, count });
  }
  if (method === "none" || count >= design.cols) return all;
  if (method === "highest_weights") {
    const { coef } = weightedRidge(design, y, { weights: options.weights, alpha: 0.01 });
    return all.sort((i, j) => Math.abs(coef[j]) - Math.abs(coef[i]) || i - j).slice(0, count);
  }
  const used: number[] = [];
  for (let step = 0; step < count; step++) {
    let best = -1, bestScore = -Infinity;
    for (const j of all) {
      if (used.includes(j)) continue;
      const { score } = weightedRidge(design, y, {
        weights: options.weights,
        alpha: 0,
        columns: [...used, j],
      });
      if (score > bestScore) {
        bestScore = score;
        best = j;
      }
    }
    used.push(best);
  }
  return used;
}
