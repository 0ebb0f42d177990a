/**
 * Backward rules for activations: ReLU and ReLU6 (with the guided and deconvnet variants),
 * LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Erf, Elu, Softplus, Softmax and LogSoftmax.
 *
 * ReLU masks multiply by a float mask computed from the forward output (fast on WASM, see
 * `reluBackward`); other piecewise rules select with `Where`. Neither `And` nor `Sign` is used:
 * the WebGPU execution provider lacks them.
 *
 * @module
 */
import { attrFloat, attrInt } from "../builder.ts";
import { constValue } from "./shapes.ts";
import { needRank, normAxis, reduceSum, type Rule, rule, type RuleContext } from "./common.ts";

/** Clip bounds when they are constants: `undefined` for an absent bound, `null` if dynamic. */
export function clipBounds(c: Pick<RuleContext, "node" | "info">): {
  min: number | undefined | null;
  max: number | undefined | null;
} {
  const bound = (i: number) => {
    if (!c.node.input[i]) return undefined;
    const v = constValue(c.info, c.node.input[i]);
    return v && v.length === 1 ? v[0] : null;
  };
  return { min: bound(1), max: bound(2) };
}

/**
 * The backward of a ReLU-like node whose output is `y`, pass band `0 < y < max` (`max`
 * undefined for plain ReLU), under the rule in `c.relu`:
 * - `standard`: dx = dy · [0 < y < max]
 * - `guided` (Springenberg et al. 2015): dx = max(dy, 0) · [0 < y < max]
 * - `deconvnet` (Zeiler & Fergus 2014): dx = max(dy, 0), whatever y
 *
 * The mask multiplies as a float (`Cast` of a comparison) instead of selecting with `Where`:
 * onnxruntime's CPU `Where` runs on one thread through its generic broadcast loop, while
 * comparisons, `Cast` and `Mul` are split across the WASM threads. Both give exactly `dy` or 0
 * for a finite dy (a blocked negative dy gives −0). For a constant `max` ≥ 1 the band is one
 * comparison, `y·(max − y) > 0`, cheaper than two comparisons and two masks: y is the clip's
 * output, so it lies in [0, max]; the product is 0 exactly at the two ends and, with max ≥ 1,
 * never underflows to 0 between them (WASM keeps subnormals).
 */
function reluBackward(c: RuleContext, max: string | undefined): string {
  const y = c.node.output[0], zero = c.b.scalar(0);
  let g = c.dy[0]!;
  if (c.relu !== "standard") g = c.b.op("Relu", [g]);
  if (c.relu === "deconvnet") return g;
  // The mask takes y's element type (float32 when unknown) so that it multiplies dy.
  const asFloat = (bool: string) => c.b.op("Cast", [bool], { to: c.info.get(y).type || 1 });
  const maxValue = max === undefined ? undefined : constValue(c.info, max);
  let mask: string;
  if (max === undefined) mask = asFloat(c.b.op("Greater", [y, zero]));
  else if (maxValue && maxValue.length === 1 && maxValue[0] >= 1) {
    const band = c.b.op("Mul", [y, c.b.op("Sub", [max, y])]);
    mask = asFloat(c.b.op("Greater", [band, zero]));
  } else {
    mask = c.b.op("Mul", [
      asFloat(c.b.op("Greater", [y, zero])),
      asFloat(c.b.op("Less", [y, max])),
    ]);
  }
  return c.b.op("Mul", [g, mask]);
}

/** Activation rules by op type. */
export const ACTIVATION_RULES: Record<string, Rule> = {
  Relu: rule([0], (c) => [reluBackward(c, undefined)]),
  Clip: rule([0], (c) => {
    const { min } = clipBounds(c);
    const maxName = c.node.input[2] || undefined;
    if (min === 0) return [reluBackward(c, maxName)];
    // A general clamp passes the gradient strictly inside (min, max), like torch's hardtanh.
    const x = c.node.input[0], zero = c.b.scalar(0);
    let g = c.dy[0]!;
    if (maxName) g = c.b.op("Where", [c.b.op("Less", [x, maxName]), g, zero]);
    if (c.node.input[1]) g = c.b.op("Where", [c.b.op("Greater", [x, c.node.input[1]]), g, zero]);
    return [g];
  }),
  LeakyRelu: rule([0], (c) => {
    const x = c.node.input[0], g = c.dy[0]!;
    const alpha = attrFloat(c.node, "alpha") ?? 0.01;
    const neg = c.b.op("Mul", [g, c.b.scalar(alpha)]);
    return [c.b.op("Where", [c.b.op("Greater", [x, c.b.scalar(0)]), g, neg])];
  }),
  Sigmoid: rule([0], (c) => {
    const y = c.node.output[0];
    const d = c.b.op("Mul", [y, c.b.op("Sub", [c.b.scalar(1), y])]);
    return [c.b.op("Mul", [c.dy[0]!, d])];
  }),
  Tanh: rule([0], (c) => {
    const y = c.node.output[0];
    const d = c.b.op("Sub", [c.b.scalar(1), c.b.op("Mul", [y, y])]);
    return [c.b.op("Mul", [c.dy[0]!, d])];
  }),
  Erf: rule([0], (c) => {
    const x = c.node.input[0];
    const e = c.b.op("Exp", [c.b.op("Neg", [c.b.op("Mul", [x, x])])]);
    const d = c.b.op("Mul", [e, c.b.scalar(2 / Math.sqrt(Math.PI))]);
    return [c.b.op("Mul", [c.dy[0]!, d])];
  }),
  HardSigmoid: rule([0], (c) => {
    const y = c.node.output[0], zero = c.b.scalar(0);
    const alpha = attrFloat(c.node, "alpha") ?? 0.2;
    const g = c.b.op("Mul", [c.dy[0]!, c.b.scalar(alpha)]);
    const inner = c.b.op("Where", [c.b.op("Less", [y, c.b.scalar(1)]), g, zero]);
    return [c.b.op("Where", [c.b.op("Greater", [y, zero]), inner, zero])];
  }),
  HardSwish: rule([0], (c) => {
    // torch: 0 for x < -3, dy·(x/3 + 1/2) for -3 ≤ x ≤ 3, dy above.
    const x = c.node.input[0], g = c.dy[0]!, zero = c.b.scalar(0);
    const slope = c.b.op("Add", [c.b.op("Div", [x, c.b.scalar(3)]), c.b.scalar(0.5)]);
    const mid = c.b.op("Where", [
      c.b.op("Greater", [x, c.b.scalar(3)]),
      g,
      c.b.op("Mul", [g, slope]),
    ]);
    return [c.b.op("Where", [c.b.op("Less", [x, c.b.scalar(-3)]), zero, mid])];
  }),
  Elu: rule([0], (c) => {
    const x = c.node.input[0], y = c.node.output[0], g = c.dy[0]!;
    const alpha = attrFloat(c.node, "alpha") ?? 1;
    const neg = c.b.op("Mul", [g, c.b.op("Add", [y, c.b.scalar(alpha)])]);
    return [c.b.op("Where", [c.b.op("Greater", [x, c.b.scalar(0)]), g, neg])];
  }),
  Softplus: rule([0], (c) => [
    c.b.op("Mul", [c.dy[0]!, c.b.op("Sigmoid", [c.node.input[0]])]),
  ]),
  Softmax: rule([0], (c) => {
    const y = c.node.output[0], g = c.dy[0]!;
    const axis = normAxis(attrInt(c.node, "axis") ?? -1, needRank(c, y));
    const dot = reduceSum(c, c.b.op("Mul", [g, y]), { axes: [axis], keepdims: true });
    return [c.b.op("Mul", [y, c.b.op("Sub", [g, dot])])];
  }),
  LogSoftmax: rule([0], (c) => {
    const y = c.node.output[0], g = c.dy[0]!;
    const axis = normAxis(attrInt(c.node, "axis") ?? -1, needRank(c, y));
    const sum = reduceSum(c, g, { axes: [axis], keepdims: true });
    return [c.b.op("Sub", [g, c.b.op("Mul", [c.b.op("Exp", [y]), sum])])];
  }),
};
