/**
 * The lasso regularisation path by least angle regression with the lasso modification (Efron,
 * Hastie, Johnstone & Tibshirani 2004, "Least Angle Regression", Annals of Statistics 32(2),
 * sections 2–3.1), step for step as scikit-learn's `lars_path(X, y, method="lasso")` computes it
 * when no Gram matrix is given — the path LIME's `feature_selection="lasso_path"` walks.
 *
 * The path minimises (1 / 2n)·‖y − Xβ‖² + α·‖β‖₁ for every α ≥ 0: starting at β = 0 and
 * α_max = max_j |x_jᵀy| / n, it moves along the equiangular direction of the active columns until
 * an inactive column's correlation catches up (it joins) or an active coefficient reaches 0 (it
 * leaves, the lasso modification). The breakpoints are returned with their α (scaled by 1/n as
 * scikit-learn does). No intercept and no normalisation: centre and weight the data first.
 * scikit-learn's numerical guards are kept: correlations of the direction rounded to 15 decimals,
 * `tiny32` in the step denominators, a Cholesky pivot below 1e-7 sets that column's correlation to
 * 0 instead of adding it, and the path stops early when α would grow or falls to float32 epsilon.
 * Web-standard only.
 *
 * @module
 */
import type { Design } from "./ridge.ts";
import { roundHalfEven } from "./resize.ts";
import { weightedMeans } from "./weighted_means.ts";

/** Options of {@linkcode lassoPath}. */
export interface LassoPathOptions {
  /** Most iterations (scikit-learn's `max_iter`, default 500). */
  readonly maxIter?: number;
  /** Smallest α of the path (default 0: to the least-squares end). */
  readonly alphaMin?: number;
}

/** The breakpoints of a lasso path. */
export interface LassoPath {
  /** α at each breakpoint, decreasing, the first max_j |x_jᵀy| / n. */
  readonly alphas: Float64Array;
  /** Coefficients at each breakpoint (`cols` values each), the first all zero. */
  readonly coefs: readonly Float64Array[];
  /** Active columns at the end of the path, in order of entry. */
  readonly active: readonly number[];
}

const TINY32 = 1.1754943508222875e-38;
const EPS = 2.220446049250313e-16;
const FLOAT32_EPS = 1.1920928955078125e-7;

// numpy's `around(v, 15)`: scale, round half to even, unscale.
function around15(v: number): number {
  return roundHalfEven(v * 1e15) / 1e15;
}

// Cholesky factor (lower, row-major m×m) of the Gram matrix of columns `cols`.
function cholesky(gram: (a: number, b: number) => number, cols: readonly number[]) {
  const m = cols.length;
  const l = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let s = gram(cols[i], cols[j]);
      for (let k = 0; k < j; k++) s -= l[i * m + k] * l[j * m + k];
      l[i * m + j] = i === j ? Math.max(Math.sqrt(Math.abs(s)), EPS) : s / l[j * m + j];
    }
  }
  return l;
}

// Solve L Lᵀ x = b.
function choleskySolve(l: Float64Array, b: readonly number[]): Float64Array {
  const m = b.length;
  const y = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * m + k] * y[k];
    y[i] = s / l[i * m + i];
  }
  for (let i = m - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < m; k++) s -= l[k * m + i] * y[k];
    y[i] = s / l[i * m + i];
  }
  return y;
}

/** Compute the lasso path of `y` on `design` by LARS (scikit-learn's `lars_path`, `lasso`). */
export function lassoPath(
  design: Design,
  y: ArrayLike<number>,
  options: LassoPathOptions = {},
): LassoPath {
  const { rows: n, cols: p, data: x } = design;
  const maxIter = options.maxIter ?? 500;
  const alphaMin = options.alphaMin ?? 0;
  const dot = (a: number, b: number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i * p + a] * x[i * p + b];
    return s;
  };
  const cov = new Float64Array(p);
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i * p + j] * y[i];
    cov[j] = s;
  }
  const alphas: number[] = [0];
  const coefs: Float64Array[] = [new Float64Array(p)];
  const active: number[] = [];
  const sign: number[] = [];
  const isActive = new Uint8Array(p);
  let l: Float64Array = new Float64Array(0);
  let iter = 0;
  let drop = false;
  while (true) {
    let cIdx = -1, cSigned = 0, c = 0;
    for (let j = 0; j < p; j++) {
      if (!isActive[j] && (cIdx < 0 || Math.abs(cov[j]) > c)) {
        cIdx = j;
        cSigned = cov[j];
        c = Math.abs(cov[j]);
      }
    }
    alphas[iter] = c / n;
    if (alphas[iter] <= alphaMin + FLOAT32_EPS) {
      if (Math.abs(alphas[iter] - alphaMin) > FLOAT32_EPS) {
        if (iter > 0) {
          const ss = (alphas[iter - 1] - alphaMin) / (alphas[iter - 1] - alphas[iter]);
          const prev = coefs[iter - 1], cur = coefs[iter];
          for (let j = 0; j < p; j++) cur[j] = prev[j] + ss * (cur[j] - prev[j]);
        }
        alphas[iter] = alphaMin;
      }
      break;
    }
    if (iter >= maxIter || active.length >= p) break;
    if (!drop) {
      // Append x_j to the Cholesky factor of the active Gram matrix.
      const m = active.length;
      const w = new Float64Array(m);
      for (let k = 0; k < m; k++) {
        let s = dot(active[k], cIdx);
        for (let q = 0; q < k; q++) s -= l[k * m + q] * w[q];
        w[k] = s / l[k * m + k];
      }
      let v = 0;
      for (let k = 0; k < m; k++) v += w[k] * w[k];
      const diag = Math.max(Math.sqrt(Math.abs(dot(cIdx, cIdx) - v)), EPS);
      if (diag < 1e-7) {
        // A column collinear with the active ones: scikit-learn zeroes its correlation.
        cov[cIdx] = 0;
        continue;
      }
      const grown = new Float64Array((m + 1) * (m + 1));
      for (let r = 0; r < m; r++) {
        for (let q = 0; q <= r; q++) grown[r * (m + 1) + q] = l[r * m + q];
      }
      for (let q = 0; q < m; q++) grown[m * (m + 1) + q] = w[q];
      grown[m * (m + 1) + m] = diag;
      l = grown;
      active.push(cIdx);
      sign.push(Math.sign(cSigned));
      isActive[cIdx] = 1;
    }
    // α must fall along a lasso path; when rounding makes it rise the path is over.
    if (iter > 0 && alphas[iter - 1] < alphas[iter]) break;
    const m = active.length;
    let ls = choleskySolve(l, sign);
    let aa: number;
    let quad = 0;
    for (let k = 0; k < m; k++) quad += ls[k] * sign[k];
    aa = 1 / Math.sqrt(quad);
    for (let i = 0; !Number.isFinite(aa); i++) {
      // An ill-conditioned factor: regularise its diagonal until the direction is finite.
      const lr = Float64Array.from(l);
      for (let k = 0; k < m; k++) lr[k * m + k] += 2 ** i * EPS;
      ls = choleskySolve(lr, sign);
      quad = 0;
      for (let k = 0; k < m; k++) quad += ls[k] * sign[k];
      aa = 1 / Math.sqrt(Math.max(quad, EPS));
    }
    for (let k = 0; k < m; k++) ls[k] *= aa;
    const eqDir = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += x[i * p + active[k]] * ls[k];
      eqDir[i] = s;
    }
    const corr = new Float64Array(p);
    let gamma = c / aa;
    for (let j = 0; j < p; j++) {
      if (isActive[j]) continue;
      let s = 0;
      for (let i = 0; i < n; i++) s += x[i * p + j] * eqDir[i];
      corr[j] = around15(s);
      const g1 = (c - cov[j]) / (aa - corr[j] + TINY32);
      const g2 = (c + cov[j]) / (aa + corr[j] + TINY32);
      if (g1 > 0 && g1 < gamma) gamma = g1;
      if (g2 > 0 && g2 < gamma) gamma = g2;
    }
    const prev = coefs[iter];
    let zPos = Number.MAX_VALUE;
    const z = active.map((j, k) => -prev[j] / (ls[k] + TINY32));
    for (const v of z) if (v > 0 && v < zPos) zPos = v;
    drop = zPos < gamma;
    let leaving: number[] = [];
    if (drop) {
      leaving = z.flatMap((v, k) => v === zPos ? [k] : []).reverse();
      gamma = zPos;
    }
    iter++;
    const next = new Float64Array(p);
    active.forEach((j, k) => next[j] = prev[j] + gamma * ls[k]);
    coefs[iter] = next;
    alphas[iter] = 0;
    for (let j = 0; j < p; j++) if (!isActive[j]) cov[j] -= gamma * corr[j];
    if (drop) {
      const gone = leaving.map((k) => active[k]);
      for (const k of leaving) {
        active.splice(k, 1);
        sign.splice(k, 1);
      }
      for (const j of gone) isActive[j] = 0;
      l = cholesky(dot, active);
      const residual = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = y[i];
        for (const j of active) s -= x[i * p + j] * next[j];
        residual[i] = s;
      }
      for (const j of gone) {
        let s = 0;
        for (let i = 0; i < n; i++) s += x[i * p + j] * residual[i];
        cov[j] = s;
      }
    }
  }
  return {
    alphas: Float64Array.from(alphas.slice(0, iter + 1)),
    coefs: coefs.slice(0, iter + 1),
    active,
  };
}

/**
 * LIME's `lasso_path` selection (`LimeBase.feature_selection`): centre the design and the target
 * on their `weights`-weighted means (unit weights when absent), scale rows by √weight, walk the lasso path, and keep the
 * nonzero coefficients of the last breakpoint (smallest α) with at most `count` of them; the
 * first breakpoint after β = 0 when none has so few.
 */
export function lassoPathSelect(
  design: Design,
  y: ArrayLike<number>,
  options: { weights?: ArrayLike<number>; count: number },
): number[] {
  const { rows: n, cols: p, data } = design;
  const w = options.weights;
  const { ymean, xmean } = weightedMeans(design, y, { weights: w });
  const xw = new Float64Array(n * p), yw = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = w ? Math.sqrt(w[i]) : 1;
    yw[i] = (y[i] - ymean) * s;
    for (let j = 0; j < p; j++) xw[i * p + j] = (data[i * p + j] - xmean[j]) * s;
  }
  const { coefs } = lassoPath({ rows: n, cols: p, data: xw }, yw);
  let nonzero = Array.from({ length: p }, (_, j) => j);
  for (let i = coefs.length - 1; i > 0; i--) {
    nonzero = [];
    coefs[i].forEach((v, j) => v !== 0 && nonzero.push(j));
    if (nonzero.length <= options.count) break;
  }
  return nonzero;
}
