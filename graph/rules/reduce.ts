/**
 * Backward rules for reductions: ReduceSum, ReduceMean (the gradient is broadcast back, scaled
 * by 1/count for the mean), ReduceMax and ReduceMin (split evenly among tied extrema, like
 * torch's amax/amin), ReduceSumSquare.
 *
 * @module
 */
import { attrInt, attrInts } from "../builder.ts";
import { constValue, prodDims } from "./shapes.ts";
import {
  needRank,
  normAxis,
  reduceSum,
  type Rule,
  rule,
  type RuleContext,
  RuleError,
  unsqueeze,
} from "./common.ts";

/** Reduced axes (sorted, non-negative) of a Reduce* node, or `[]` for a no-op. */
function reducedAxes(c: RuleContext): number[] {
  const x = c.node.input[0];
  const rank = needRank(c, x);
  let axes = attrInts(c.node, "axes");
  if (!axes && c.node.input[1]) {
    axes = constValue(c.info, c.node.input[1]);
    if (!axes) throw new RuleError("the axes input is not a constant");
  }
  if (!axes || axes.length === 0) {
    if ((attrInt(c.node, "noop_with_empty_axes") ?? 0) === 1) return [];
    axes = Array.from({ length: rank }, (_, i) => i);
  }
  return [...new Set(axes.map((a) => normAxis(a, rank)))].sort((a, b) => a - b);
}

/** The output gradient with the reduced axes kept (size 1). */
function keptGradient(c: RuleContext, axes: readonly number[], t = c.dy[0]!): string {
  return (attrInt(c.node, "keepdims") ?? 1) === 1 ? t : unsqueeze(c, t, { axes });
}

function expandTo(c: RuleContext, g: string, x: string): string {
  return c.b.op("Expand", [g, c.shapeOf(x)]);
}

function extremum(c: RuleContext): string[] {
  const x = c.node.input[0];
  const axes = reducedAxes(c);
  if (axes.length === 0) return [c.dy[0]!];
  const y = keptGradient(c, axes, c.node.output[0]);
  const mask = c.b.op("Cast", [c.b.op("Equal", [x, y])], { to: 1 });
  const count = reduceSum(c, mask, { axes, keepdims: true });
  const g = c.b.op("Div", [keptGradient(c, axes), count]);
  return [c.b.op("Mul", [mask, g])];
}

/** Reduction rules by op type. */
export const REDUCE_RULES: Record<string, Rule> = {
  ReduceSum: rule([0], (c) => {
    const x = c.node.input[0];
    const axes = reducedAxes(c);
    if (axes.length === 0) return [c.dy[0]!];
    return [expandTo(c, keptGradient(c, axes), x)];
  }),
  ReduceMean: rule([0], (c) => {
    const x = c.node.input[0];
    const axes = reducedAxes(c);
    if (axes.length === 0) return [c.dy[0]!];
    const dims = c.info.get(x).dims!;
    const count = prodDims(axes.map((a) => dims[a]));
    let g = keptGradient(c, axes);
    if (typeof count === "number") g = c.b.op("Mul", [g, c.b.scalar(1 / count)]);
    else {
      const ratio = c.b.op("Div", [
        c.b.op("Cast", [c.b.op("Size", [x])], { to: 1 }),
        c.b.op("Cast", [c.b.op("Size", [c.node.output[0]])], { to: 1 }),
      ]);
      g = c.b.op("Div", [g, ratio]);
    }
    return [expandTo(c, g, x)];
  }),
  ReduceSumSquare: rule([0], (c) => {
    const x = c.node.input[0];
    const axes = reducedAxes(c);
    const g = axes.length === 0 ? c.dy[0]! : keptGradient(c, axes);
    return [c.b.op("Mul", [c.b.op("Mul", [x, c.b.scalar(2)]), g])];
  }),
  ReduceMax: rule([0], extremum),
  ReduceMin: rule([0], extremum),
};
