/**
 * The registry of backward rules by op type (default ONNX domain).
 *
 * @module
 */
import { ACTIVATION_RULES } from "./activation.ts";
import { type Rule, rule } from "./common.ts";
import { CONV_RULES } from "./conv.ts";
import { ELEMENTWISE_RULES } from "./elementwise.ts";
import { MATMUL_RULES } from "./matmul.ts";
import { NORM_RULES } from "./norm.ts";
import { POOL_RULES } from "./pool.ts";
import { REDUCE_RULES } from "./reduce.ts";
import { SHAPE_RULES } from "./shape.ts";

export type { ReluRule, Rule, RuleContext } from "./common.ts";
export { RuleError } from "./common.ts";
export { type Dim, ShapeInfo, type TensorInfo } from "./shapes.ts";

/**
 * Ops whose outputs carry no gradient: shape computations, comparisons, index results and
 * piecewise-constant functions (their derivative is zero almost everywhere).
 */
const NO_GRADIENT = (
  "Shape Size Constant ConstantOfShape Equal Less Greater LessOrEqual GreaterOrEqual Not And Or " +
  "Xor ArgMax ArgMin NonZero Range Floor Ceil Round Sign IsNaN IsInf EyeLike OneHot RandomNormal " +
  "RandomUniform RandomNormalLike RandomUniformLike Bernoulli"
).split(" ");

/** Every backward rule, by op type. */
export const RULES: Readonly<Record<string, Rule>> = {
  ...Object.fromEntries(NO_GRADIENT.map((op) => [op, rule([], () => [])])),
  ...ELEMENTWISE_RULES,
  ...ACTIVATION_RULES,
  ...CONV_RULES,
  ...POOL_RULES,
  ...NORM_RULES,
  ...REDUCE_RULES,
  ...MATMUL_RULES,
  ...SHAPE_RULES,
};

/** Op types that have a backward rule (excluding those that never carry a gradient). */
export function differentiableOps(): string[] {
  return Object.keys(RULES).filter((op) => !NO_GRADIENT.includes(op)).sort();
}
