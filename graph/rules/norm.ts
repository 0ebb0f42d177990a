/**
 * Backward rules for normalization layers: BatchNormalization (inference: a per-channel affine
 * map), InstanceNormalization and LayerNormalization (the statistics depend on the input, so the
 * full normalization Jacobian applies). The decomposed LayerNorm that older exporters emit
 * (ReduceMean, Sub, Pow, Sqrt, Div, …) needs no rule of its own: its primitives have rules.
 *
 * @module
 */
import { attrFloat, attrInt } from "../builder.ts";
import {
  needRank,
  normAxis,
  reduceOp,
  type Rule,
  rule,
  type RuleContext,
  RuleError,
  unsqueeze,
} from "./common.ts";

/**
 * dx of `y = (x − mean) / sqrt(var + eps)` over `axes`, given `gs`, the gradient with respect
 * to the normalized value: `rstd · (gs − mean(gs) − x̂ · mean(gs · x̂))`.
 */
function normalizeBackward(
  c: RuleContext,
  x: string,
  options: { gs: string; axes: readonly number[]; eps: number },
): string {
  const mean = (t: string) =>
    reduceOp(c, t, { op: "ReduceMean", axes: options.axes, keepdims: true });
  const xc = c.b.op("Sub", [x, mean(x)]);
  const variance = mean(c.b.op("Mul", [xc, xc]));
  const rstd = c.b.op("Reciprocal", [
    c.b.op("Sqrt", [c.b.op("Add", [variance, c.b.scalar(options.eps)])]),
  ]);
  const xhat = c.b.op("Mul", [xc, rstd]);
  const gs = options.gs;
  const centered = c.b.op("Sub", [gs, mean(gs)]);
  const proj = c.b.op("Mul", [xhat, mean(c.b.op("Mul", [gs, xhat]))]);
  return c.b.op("Mul", [c.b.op("Sub", [centered, proj]), rstd]);
}

/** `[C]` → `[C, 1, …]` so it broadcasts against an `[N, C, …]` tensor of rank `rank`. */
function channelVector(c: RuleContext, v: string, rank: number): string {
  return unsqueeze(c, v, { axes: Array.from({ length: rank - 2 }, (_, i) => i + 1) });
}

/** Normalization rules by op type. */
export const NORM_RULES: Record<string, Rule> = {
  BatchNormalization: rule([0], (c) => {
    if ((attrInt(c.node, "training_mode") ?? 0) === 1) {
      throw new RuleError("training_mode=1 is not supported (export the model in eval mode)");
    }
    const [x, scale, , , variance] = c.node.input;
    const eps = attrFloat(c.node, "epsilon") ?? 1e-5;
    // scale / sqrt(var + eps) depends on weights only; onnxruntime folds it at load time.
    const std = c.b.op("Sqrt", [c.b.op("Add", [variance, c.b.scalar(eps)])]);
    const factor = channelVector(c, c.b.op("Div", [scale, std]), needRank(c, x));
    return [c.b.op("Mul", [c.dy[0]!, factor])];
  }),
  InstanceNormalization: rule([0], (c) => {
    const [x, scale] = c.node.input;
    const rank = needRank(c, x);
    const eps = attrFloat(c.node, "epsilon") ?? 1e-5;
    const gs = c.b.op("Mul", [c.dy[0]!, channelVector(c, scale, rank)]);
    const axes = Array.from({ length: rank - 2 }, (_, i) => i + 2);
    return [normalizeBackward(c, x, { gs, axes, eps })];
  }),
  LayerNormalization: rule([0], (c) => {
    const [x, scale] = c.node.input;
    if (c.dy[1] || c.dy[2]) {
      throw new RuleError("gradients through Mean/InvStdDev are not supported");
    }
    if (!c.dy[0]) return [undefined];
    const rank = needRank(c, x);
    const axis = normAxis(attrInt(c.node, "axis") ?? -1, rank);
    const eps = attrFloat(c.node, "epsilon") ?? 1e-5;
    const gs = c.b.op("Mul", [c.dy[0], scale]);
    const axes = Array.from({ length: rank - axis }, (_, i) => i + axis);
    return [normalizeBackward(c, x, { gs, axes, eps })];
  }),
};
