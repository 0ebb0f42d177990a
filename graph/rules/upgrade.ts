/**
 * Rewrites forward nodes of an older default-domain opset so they keep their meaning under the
 * newer opset the gradient graph imports. Only the changes that matter between opset 9 and 17
 * are handled: attributes that became inputs (Clip 11, Pad 11, Slice 10, Squeeze / Unsqueeze /
 * ReduceSum / Split 13) and the Softmax family's switch from "flatten from axis" to "one axis"
 * at 13 (with default axis 1 → −1). Dropout becomes Identity (inference). Any other op is kept
 * only if its semantics did not change across the versions involved.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { LanternError } from "../../pipeline/errors.ts";
import { type NodeProto, NodeProtoSchema } from "onnx-buf";
import {
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  getAttr,
  type GraphBuilder,
  makeAttribute,
} from "../builder.ts";
import { isStatic, type ShapeInfo, windowOutput, windowParams } from "./shapes.ts";

/** Ops whose meaning did not change from opset 9 through 17 (only new types or attributes with
 * backward-compatible defaults). */
const STABLE = new Set(
  ("Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization " +
    "BitShift Cast Ceil Celu Compress Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh " +
    "CumSum DepthToSpace Det Div Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather " +
    "GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater " +
    "GreaterOrEqual GRU HardSigmoid HardSwish Identity InstanceNormalization IsInf IsNaN " +
    "LayerNormalization LeakyRelu Less LessOrEqual Log LpNormalization LpPool LRN LSTM MatMul " +
    "MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean MeanVarianceNormalization Min Mish Mod " +
    "Mul Neg NonMaxSuppression NonZero Not OneHot Or Pow PRelu Range Reciprocal ReduceL1 ReduceL2 " +
    "ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSumSquare Relu " +
    "Reshape RNN Round ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size " +
    "Softplus Softsign SpaceToDepth Sqrt Sub Sum Tan Tanh ThresholdedRelu Tile Transpose Trilu " +
    "Unique Where Xor").split(" "),
);

/** Ops stable only from the given opset on. */
const STABLE_SINCE: Record<string, number> = {
  Clip: 11,
  Pad: 11,
  Slice: 10,
  Resize: 11,
  TopK: 11,
  Squeeze: 13,
  Unsqueeze: 13,
  ReduceSum: 13,
  Split: 13,
  Softmax: 13,
  LogSoftmax: 13,
  Hardmax: 13,
};

/**
 * With ceil_mode, a last window that would start in the end padding is dropped by onnxruntime
 * and torch, but not by ONNX shape inference, which then disagrees with the kernel and makes
 * gradient graphs that combine the two shapes fail to load. Such a node is rewritten to the same
 * windows without ceil_mode: end pads shrunk to exactly cover the last kept window (the windows,
 * their clipping and every divisor stay the same).
 */
function exactCeilPool(node: NodeProto, info: ShapeInfo): NodeProto | undefined {
  if ((attrString(node, "auto_pad") ?? "NOTSET") !== "NOTSET") return undefined;
  const wp = windowParams(node, info);
  const spatial = info.get(node.input[0]).dims?.slice(2);
  if (!wp || !wp.pads || !spatial || !isStatic(spatial)) return undefined;
  const end = [...wp.pads.end];
  let dropped = false;
  for (let i = 0; i < wp.kernel.length; i++) {
    const eff = (wp.kernel[i] - 1) * wp.dilations[i] + 1;
    const span = spatial[i] + wp.pads.begin[i] + wp.pads.end[i] - eff;
    const spec = Math.ceil(span / wp.strides[i]) + 1;
    const kernel = windowOutput(spatial[i], {
      k: wp.kernel[i],
      s: wp.strides[i],
      d: wp.dilations[i],
      pb: wp.pads.begin[i],
      pe: wp.pads.end[i],
      ceil: true,
    }) as number;
    const exact = (kernel - 1) * wp.strides[i] + eff - spatial[i] - wp.pads.begin[i];
    if (spec !== kernel) dropped = true;
    // exact < 0: the kept windows end before the input does; floor mode then counts them.
    end[i] = Math.max(0, exact);
  }
  if (!dropped) return undefined;
  const attribute = without(node, ["pads", "ceil_mode"]);
  attribute.push(makeAttribute("pads", [...wp.pads.begin, ...end]));
  return clone(node, { attribute });
}

function clone(node: NodeProto, patch: Partial<NodeProto>): NodeProto {
  return create(NodeProtoSchema, { ...node, ...patch });
}

function without(node: NodeProto, names: readonly string[]): NodeProto["attribute"] {
  return node.attribute.filter((a) => !names.includes(a.name));
}

function fail(node: NodeProto, from: number, to: number, why: string): never {
  throw new LanternError(
    `Cannot upgrade node "${node.name}" (${node.opType}) from opset ${from} to ${to}: ${why}`,
  );
}

/**
 * The nodes of a graph rewritten from opset `from` to `to` (unchanged when `from >= to`).
 * `used` tells whether a tensor is read by any node or graph output.
 */
export function upgradeNodes(
  nodes: readonly NodeProto[],
  options: {
    from: number;
    to: number;
    b: GraphBuilder;
    info: ShapeInfo;
    used: (name: string) => boolean;
  },
): NodeProto[] {
  const { from, to, b, info } = options;
  const out: NodeProto[] = [];
  for (const node of nodes) {
    const op = node.opType;
    if (node.domain && node.domain !== "ai.onnx") {
      out.push(node);
      continue;
    }
    if (op === "Dropout") {
      if (node.output.slice(1).some((o) => o && options.used(o))) {
        fail(node, from, to, "its mask output is used");
      }
      out.push(
        clone(node, {
          opType: "Identity",
          input: [node.input[0]],
          output: [node.output[0]],
          attribute: [],
        }),
      );
      continue;
    }
    if ((op === "MaxPool" || op === "AveragePool") && (attrInt(node, "ceil_mode") ?? 0) === 1) {
      const fixed = exactCeilPool(node, info);
      if (fixed) {
        out.push(fixed);
        continue;
      }
    }
    if (from >= to) {
      out.push(node);
      continue;
    }
    const since = STABLE_SINCE[op];
    if (since !== undefined && from >= since) {
      out.push(node);
      continue;
    }
    if (since === undefined) {
      if (!STABLE.has(op)) fail(node, from, to, "its semantics across these versions are unknown");
      if (from < 9) fail(node, from, to, "opsets before 9 are not supported");
      out.push(node);
      continue;
    }
    switch (op) {
      case "Clip": {
        const min = getAttr(node, "min"), max = getAttr(node, "max");
        const input = [
          node.input[0],
          min ? b.scalar(min.f) : "",
          max ? b.scalar(max.f) : "",
        ];
        while (input[input.length - 1] === "") input.pop();
        out.push(clone(node, { input, attribute: without(node, ["min", "max"]) }));
        break;
      }
      case "Pad": {
        const pads = attrInts(node, "pads") ?? [];
        const value = attrFloat(node, "value") ?? 0;
        out.push(clone(node, {
          input: [node.input[0], b.ints(pads), b.scalar(value)],
          attribute: without(node, ["pads", "value"]),
        }));
        break;
      }
      case "Slice": {
        const starts = attrInts(node, "starts") ?? [];
        const ends = attrInts(node, "ends") ?? [];
        const axes = attrInts(node, "axes");
        const input = [node.input[0], b.ints(starts), b.ints(ends)];
        if (axes) input.push(b.ints(axes));
        out.push(clone(node, { input, attribute: [] }));
        break;
      }
      case "Squeeze":
      case "Unsqueeze":
      case "ReduceSum": {
        const axes = attrInts(node, "axes");
        const input = axes ? [node.input[0], b.ints(axes)] : [node.input[0]];
        out.push(clone(node, { input, attribute: without(node, ["axes"]) }));
        break;
      }
      case "Split": {
        const split = attrInts(node, "split");
        const input = split ? [node.input[0], b.ints(split)] : [node.input[0]];
        out.push(clone(node, { input, attribute: without(node, ["split"]) }));
        break;
      }
      case "Softmax":
      case "LogSoftmax":
      case "Hardmax": {
        const rank = info.rank(node.input[0]);
        const axis0 = attrInt(node, "axis") ?? 1;
        if (rank === undefined) fail(node, from, to, "the input rank is unknown");
        const axis = axis0 < 0 ? axis0 + rank : axis0;
        if (axis === rank - 1) {
          out.push(
            clone(node, { attribute: [...without(node, ["axis"]), makeAttribute("axis", -1)] }),
          );
          break;
        }
        // Old semantics: coerce to 2-D at `axis`, normalize each row, restore the shape.
        const flat = b.fresh(`${node.output[0]}_flat`);
        const normed = b.fresh(`${node.output[0]}_rows`);
        const shape = b.fresh(`${node.output[0]}_shape`);
        out.push(create(NodeProtoSchema, {
          name: b.fresh(`${node.name}_flatten`),
          opType: "Flatten",
          input: [node.input[0]],
          output: [flat],
          attribute: [makeAttribute("axis", axis)],
        }));
        out.push(
          clone(node, { input: [flat], output: [normed], attribute: [makeAttribute("axis", 1)] }),
        );
        out.push(create(NodeProtoSchema, {
          name: b.fresh(`${node.name}_shape`),
          opType: "Shape",
          input: [node.input[0]],
          output: [shape],
        }));
        out.push(create(NodeProtoSchema, {
          name: b.fresh(`${node.name}_reshape`),
          opType: "Reshape",
          input: [normed, shape],
          output: [node.output[0]],
        }));
        break;
      }
      default:
        fail(node, from, to, `no upgrade from opset ${from}`);
    }
  }
  return out;
}
