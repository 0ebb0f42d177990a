/**
 * Integration rules for path methods, as Captum names them (`approximation_methods.py`):
 * points α_i in [0, 1] and weights w_i with ∫₀¹ g(α) dα ≈ Σ w_i g(α_i).
 *
 * @module
 */

/** The rule names accepted by `integrated-gradients`. */
export const RULES = [
  "riemann_left",
  "riemann_right",
  "riemann_middle",
  "riemann_trapezoid",
  "gausslegendre",
] as const;

/** One of {@linkcode RULES}. */
export type Rule = typeof RULES[number];

/** Points and weights of `rule` with `steps` evaluations. */
export function quadrature(rule: Rule, steps: number): { alphas: number[]; weights: number[] } {
  const n = steps;
  const range = (f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
  switch (rule) {
    case "riemann_left":
      return { alphas: range((i) => i / n), weights: range(() => 1 / n) };
    case "riemann_right":
      return { alphas: range((i) => (i + 1) / n), weights: range(() => 1 / n) };
    case "riemann_middle":
      return { alphas: range((i) => (i + 0.5) / n), weights: range(() => 1 / n) };
    case "riemann_trapezoid": {
      if (n < 2) throw new Error("Cannot use riemann_trapezoid: it needs at least 2 steps");
      const h = 1 / (n - 1);
      return {
        alphas: range((i) => i * h),
        weights: range((i) => (i === 0 || i === n - 1 ? h / 2 : h)),
      };
    }
    case "gausslegendre": {
      const { nodes, weights } = gaussLegendre(n);
      return { alphas: nodes.map((x) => (x + 1) / 2), weights: weights.map((w) => w / 2) };
    }
    default:
      throw new Error(
        `Cannot integrate: unknown rule "${rule}", expected one of ${RULES.join(", ")}`,
      );
  }
}

/** Gauss–Legendre nodes on [-1, 1] (ascending) and weights, by Newton's method on P_n. */
export function gaussLegendre(n: number): { nodes: number[]; weights: number[] } {
  const nodes = new Array<number>(n);
  const weights = new Array<number>(n);
  for (let i = 0; i < Math.ceil(n / 2); i++) {
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; iter++) {
      let p0 = 1, p1 = x;
      for (let k = 2; k <= n; k++) [p0, p1] = [p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k];
      if (n === 1) [p0, p1] = [1, x];
      dp = (n * (x * p1 - p0)) / (x * x - 1);
      const dx = p1 / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-16) break;
    }
    let p0 = 1, p1 = x;
    for (let k = 2; k <= n; k++) [p0, p1] = [p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k];
    dp = (n * (x * p1 - p0)) / (x * x - 1);
    nodes[i] = -x;
    nodes[n - 1 - i] = x;
    weights[i] = weights[n - 1 - i] = 2 / ((1 - x * x) * dp * dp);
  }
  return { nodes, weights };
}
