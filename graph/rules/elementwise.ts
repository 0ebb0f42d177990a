/**
 * Backward rules for element-wise arithmetic (with numpy broadcasting), pass-through ops and
 * smooth unary functions. Forward outputs are reused where the derivative is a function of them
 * (`Exp`, `Sqrt`, `Div`, `Reciprocal`) instead of being recomputed.
 *
 * @module
 */
import { TensorProto_DataType } from "onnx-buf";
import { constValue } from "./shapes.ts";
import { outDims, type Rule, rule, RuleError, sumTo } from "./common.ts";

const FLOATS = new Set<number>([
  TensorProto_DataType.FLOAT,
  TensorProto_DataType.DOUBLE,
  TensorProto_DataType.FLOAT16,
  TensorProto_DataType.BFLOAT16,
]);

const passThrough = rule([0], (c) => [c.dy[0]]);

/** Element-wise rules by op type. */
export const ELEMENTWISE_RULES: Record<string, Rule> = {
  Identity: passThrough,
  /** Inference-mode Dropout is the identity (the differentiator rewrites it to Identity). */
  Dropout: passThrough,
  Cast: {
    diff(node, info) {
      const from = info.get(node.input[0]).type;
      const to = info.get(node.output[0]).type;
      // An unknown source type (0) is taken as float: a float Cast is the common case.
      return (from === 0 || FLOATS.has(from)) && FLOATS.has(to) ? [0] : [];
    },
    backward(c) {
      const from = c.info.get(c.node.input[0]).type;
      const to = c.info.get(c.node.output[0]).type;
      return [from === to || from === 0 ? c.dy[0] : c.b.op("Cast", [c.dy[0]!], { to: from })];
    },
  },
  Add: rule([0, 1], (c) => {
    const [a, b] = c.node.input, g = c.dy[0]!, out = outDims(c);
    return [
      c.needs[0] ? sumTo(c, g, { target: a, outDims: out }) : undefined,
      c.needs[1] ? sumTo(c, g, { target: b, outDims: out }) : undefined,
    ];
  }),
  Sum: {
    diff: (node) => node.input.map((_, i) => i),
    backward(c) {
      const g = c.dy[0]!, outDims = c.info.get(c.node.output[0]).dims;
      return c.node.input.map((target, i) =>
        c.needs[i] ? sumTo(c, g, { target, outDims }) : undefined
      );
    },
  },
  Sub: rule([0, 1], (c) => {
    const [a, b] = c.node.input, g = c.dy[0]!, out = outDims(c);
    return [
      c.needs[0] ? sumTo(c, g, { target: a, outDims: out }) : undefined,
      c.needs[1] ? c.b.op("Neg", [sumTo(c, g, { target: b, outDims: out })]) : undefined,
    ];
  }),
  Mul: rule([0, 1], (c) => {
    const [a, b] = c.node.input, g = c.dy[0]!, out = outDims(c);
    return [
      c.needs[0] ? sumTo(c, c.b.op("Mul", [g, b]), { target: a, outDims: out }) : undefined,
      c.needs[1] ? sumTo(c, c.b.op("Mul", [g, a]), { target: b, outDims: out }) : undefined,
    ];
  }),
  Div: rule([0, 1], (c) => {
    const [a, b] = c.node.input, y = c.node.output[0], g = c.dy[0]!, out = outDims(c);
    // d(a/b)/db = -y/b, so the quotient already computed is reused.
    return [
      c.needs[0] ? sumTo(c, c.b.op("Div", [g, b]), { target: a, outDims: out }) : undefined,
      c.needs[1]
        ? c.b.op("Neg", [
          sumTo(c, c.b.op("Div", [c.b.op("Mul", [g, y]), b]), { target: b, outDims: out }),
        ])
        : undefined,
    ];
  }),
  Pow: rule([0, 1], (c) => {
    const [a, e] = c.node.input, y = c.node.output[0], g = c.dy[0]!, out = outDims(c);
    let da: string | undefined;
    if (c.needs[0]) {
      const ev = constValue(c.info, c.node.input[1]);
      const uniform = ev && ev.every((v) => v === ev[0]) ? ev[0] : undefined;
      let local: string;
      if (uniform === 1) local = g;
      else if (uniform === 2) local = c.b.op("Mul", [c.b.op("Mul", [g, a]), c.b.scalar(2)]);
      else if (uniform === 0.5) local = c.b.op("Div", [c.b.op("Mul", [g, c.b.scalar(0.5)]), y]);
      else if (uniform !== undefined) {
        const p = c.b.op("Pow", [a, c.b.scalar(uniform - 1)]);
        local = c.b.op("Mul", [g, c.b.op("Mul", [p, c.b.scalar(uniform)])]);
      } else {
        const em1 = c.b.op("Sub", [e, c.b.scalar(1)]);
        local = c.b.op("Mul", [g, c.b.op("Mul", [c.b.op("Pow", [a, em1]), e])]);
      }
      da = sumTo(c, local, { target: a, outDims: out });
    }
    const de = c.needs[1]
      ? sumTo(c, c.b.op("Mul", [c.b.op("Mul", [g, y]), c.b.op("Log", [a])]), {
        target: e,
        outDims: out,
      })
      : undefined;
    return [da, de];
  }),
  Neg: rule([0], (c) => [c.b.op("Neg", [c.dy[0]!])]),
  Abs: rule([0], (c) => {
    const x = c.node.input[0], g = c.dy[0]!, zero = c.b.scalar(0);
    // Sign(0) = 0 like torch; two Wheres because Sign has no WebGPU kernel.
    const neg = c.b.op("Where", [c.b.op("Less", [x, zero]), c.b.op("Neg", [g]), zero]);
    return [c.b.op("Where", [c.b.op("Greater", [x, zero]), g, neg])];
  }),
  Exp: rule([0], (c) => [c.b.op("Mul", [c.dy[0]!, c.node.output[0]])]),
  Log: rule([0], (c) => [c.b.op("Div", [c.dy[0]!, c.node.input[0]])]),
  Sqrt: rule([0], (c) => [
    c.b.op("Div", [c.b.op("Mul", [c.dy[0]!, c.b.scalar(0.5)]), c.node.output[0]]),
  ]),
  Reciprocal: rule([0], (c) => {
    const y = c.node.output[0];
    return [c.b.op("Neg", [c.b.op("Mul", [c.dy[0]!, c.b.op("Mul", [y, y])])])];
  }),
  Where: rule([1, 2], (c) => {
    const [cond, a, b] = c.node.input, g = c.dy[0]!, out = outDims(c), zero = c.b.scalar(0);
    return [
      undefined,
      c.needs[1]
        ? sumTo(c, c.b.op("Where", [cond, g, zero]), { target: a, outDims: out })
        : undefined,
      c.needs[2]
        ? sumTo(c, c.b.op("Where", [cond, zero, g]), { target: b, outDims: out })
        : undefined,
    ];
  }),
  Expand: rule([0], (c) => [sumTo(c, c.dy[0]!, { target: c.node.input[0], outDims: outDims(c) })]),
  Max: minMax("Greater"),
  Min: minMax("Less"),
};

/** Two-input Max/Min: the winner gets the gradient, ties split it evenly (like torch). */
function minMax(cmp: "Greater" | "Less"): Rule {
  return rule([0, 1], (c) => {
    if (c.node.input.length !== 2) {
      throw new RuleError(`only two inputs are supported, got ${c.node.input.length}`);
    }
    const [a, b] = c.node.input, g = c.dy[0]!, out = outDims(c), zero = c.b.scalar(0);
    const half = c.b.op("Mul", [g, c.b.scalar(0.5)]);
    const tie = c.b.op("Equal", [a, b]);
    const side = (x: string, y: string) =>
      c.b.op("Where", [c.b.op(cmp, [x, y]), g, c.b.op("Where", [tie, half, zero])]);
    return [
      c.needs[0] ? sumTo(c, side(a, b), { target: a, outDims: out }) : undefined,
      c.needs[1] ? sumTo(c, side(b, a), { target: b, outDims: out }) : undefined,
    ];
  });
}
