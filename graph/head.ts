/**
 * Find a classifier's head: the pooled feature map feeding the class scores. CAM needs the
 * GlobalAveragePool → (Flatten|Reshape|Squeeze)* → Gemm/MatMul(+Add) pattern and its weights;
 * Grad-CAM and feature maps use the same 4-D tensor as their default layer.
 *
 * @module
 */
import type { GraphProto, ModelProto, NodeProto } from "./onnx_io.ts";
import { consumers, producers } from "./onnx_io.ts";

/** A CAM-compatible head. */
export interface CamHead {
  /** The 4-D feature map `A` that is globally average pooled, `[N,K,h,w]`. */
  readonly layer: string;
  /** Class weights `W` `[classes, K]` (torch Linear layout) so that score_c = Σ_k W_ck·mean(A_k) + b_c. */
  readonly weights: Float32Array;
  /** Number of classes. */
  readonly classes: number;
  /** Number of feature channels K. */
  readonly channels: number;
}

/** The outcome of head detection: a head, or the reason there is none. */
export type HeadResult = { ok: true; head: CamHead } | {
  ok: false;
  reason: string;
  layer?: string;
};

const PASS_THROUGH = new Set(["Flatten", "Reshape", "Squeeze", "Identity", "Dropout"]);

/** Float32 values of an initializer or Constant node output, if `name` is one. */
export function constantValues(
  graph: GraphProto,
  name: string,
): { dims: number[]; data: Float32Array } | undefined {
  let t = graph.initializer.find((i) => i.name === name);
  if (!t) {
    const node = graph.node.find((n) => n.opType === "Constant" && n.output[0] === name);
    const attr = node?.attribute.find((a) => a.name === "value");
    t = attr?.t;
  }
  if (!t || t.dataType !== 1) return undefined;
  const dims = t.dims.map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  let data: Float32Array;
  if (t.rawData.length) {
    const copy = t.rawData.slice();
    data = new Float32Array(copy.buffer, 0, n);
  } else data = Float32Array.from(t.floatData);
  return { dims, data };
}

function isGlobalPool(node: NodeProto, graph: GraphProto): boolean {
  if (node.opType === "GlobalAveragePool") return true;
  if (node.opType !== "ReduceMean") return false;
  const axesAttr = node.attribute.find((a) => a.name === "axes");
  const axes = axesAttr
    ? axesAttr.ints.map(Number)
    : node.input[1]
    ? [...(constantIntValues(graph, node.input[1]) ?? [])]
    : [];
  return axes.length === 2 && axes.includes(2) && axes.includes(3) ||
    axes.length === 2 && axes.includes(-1) && axes.includes(-2);
}

function constantIntValues(graph: GraphProto, name: string): number[] | undefined {
  const t = graph.initializer.find((i) => i.name === name) ??
    graph.node.find((n) => n.opType === "Constant" && n.output[0] === name)?.attribute
      .find((a) => a.name === "value")?.t;
  if (!t) return undefined;
  if (t.int64Data.length) return t.int64Data.map(Number);
  if (t.rawData.length && t.dataType === 7) {
    const v = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    return Array.from(
      { length: t.rawData.length / 8 },
      (_, i) => Number(v.getBigInt64(i * 8, true)),
    );
  }
  return undefined;
}

const heads = new WeakMap<ModelProto, Map<string, HeadResult>>();

/**
 * Walk back from the scores output to the global pooling that feeds it. Memoized per decoded
 * model: the walk indexes every node (~3 ms on MobileNetV2), as much as a Grad-CAM's own math.
 */
export function findHead(model: ModelProto, output: string): HeadResult {
  let perModel = heads.get(model);
  if (!perModel) heads.set(model, perModel = new Map());
  let found = perModel.get(output);
  if (!found) perModel.set(output, found = walkToHead(model, output));
  return found;
}

function walkToHead(model: ModelProto, output: string): HeadResult {
  const graph = model.graph!;
  const prod = producers(graph);
  const cons = consumers(graph);
  let name = output;
  let node = prod.get(name);
  const chain: NodeProto[] = [];
  while (
    node && (PASS_THROUGH.has(node.opType) || ["Gemm", "MatMul", "Add"].includes(node.opType))
  ) {
    chain.push(node);
    name = node.input[0];
    node = prod.get(name);
  }
  if (!node || !isGlobalPool(node, graph)) {
    const seen = [...chain.map((n) => n.opType)].reverse();
    const found = [node?.opType ?? "input", ...seen].join(" → ");
    return { ok: false, reason: `its head is ${found}, not GlobalAveragePool → Gemm/MatMul` };
  }
  const layer = node.input[0];
  if ((cons.get(name)?.length ?? 0) > 1) {
    return { ok: false, reason: "the pooled features feed more than the class scores", layer };
  }
  const linear = chain.filter((n) => n.opType === "Gemm" || n.opType === "MatMul");
  if (linear.length > 1) {
    return { ok: false, reason: "its head has more than one linear layer", layer };
  }
  const adds = chain.filter((n) => n.opType === "Add");
  if (linear.length === 0) {
    // Pooling straight into scores (NIN / all-convolutional heads): W is the identity.
    if (adds.length) {
      return { ok: false, reason: "its head adds a bias without a linear layer", layer };
    }
    return { ok: true, head: { layer, weights: new Float32Array(0), classes: 0, channels: 0 } };
  }
  for (const add of adds) {
    if (!constantValues(graph, add.input[1]) && !constantValues(graph, add.input[0])) {
      return { ok: false, reason: `its head adds a non-constant tensor (${add.name})`, layer };
    }
  }
  const lin = linear[0];
  const w = constantValues(graph, lin.input[1]);
  if (!w || w.dims.length !== 2) {
    return {
      ok: false,
      reason: `the weights of ${lin.opType} "${lin.name}" are not a constant matrix`,
      layer,
    };
  }
  const attr = (n: string, d: number) => {
    const a = lin.attribute.find((x) => x.name === n);
    return a ? (a.type === 1 ? a.f : Number(a.i)) : d;
  };
  if (lin.opType === "Gemm" && attr("transA", 0) !== 0) {
    return { ok: false, reason: "its Gemm transposes the features (transA=1)", layer };
  }
  const transB = lin.opType === "Gemm" ? attr("transB", 0) : 0;
  const alpha = lin.opType === "Gemm" ? attr("alpha", 1) : 1;
  const [r, c] = w.dims;
  const classes = transB ? r : c;
  const channels = transB ? c : r;
  const weights = new Float32Array(classes * channels);
  for (let cls = 0; cls < classes; cls++) {
    for (let k = 0; k < channels; k++) {
      weights[cls * channels + k] = alpha *
        (transB ? w.data[cls * channels + k] : w.data[k * classes + cls]);
    }
  }
  return { ok: true, head: { layer, weights, classes, channels } };
}
