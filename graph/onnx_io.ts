/**
 * ONNX protobuf reading and writing (via `onnx-buf` on `@bufbuild/protobuf`), and the small graph
 * rewrites the runtime needs: listing tensors, exposing intermediate tensors as outputs.
 *
 * Weights are not copied: decoded `rawData` fields are views into the input bytes.
 *
 * @module
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type GraphProto,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  TensorProto_DataType,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
} from "onnx-buf";

export type { GraphProto, ModelProto, NodeProto };

/** Decode ONNX model bytes. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  try {
    return fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    throw new Error(`Cannot parse ONNX model: ${(e as Error).message}`);
  }
}

/** Encode a model to ONNX bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

/** Names of the graph's initializers (weights). */
export function initializerNames(graph: GraphProto): Set<string> {
  return new Set(graph.initializer.map((t) => t.name));
}

/** Graph inputs that are real inputs, not initializers listed as inputs (old exporters do that). */
export function realInputs(graph: GraphProto): GraphProto["input"] {
  const inits = initializerNames(graph);
  return graph.input.filter((i) => !inits.has(i.name));
}

/** Static dims of a value info, `-1` for symbolic or missing dims. */
export function valueInfoDims(info: GraphProto["input"][number]): number[] {
  const t = info.type?.value;
  if (!t || t.case !== "tensorType" || !t.value.shape) return [];
  return t.value.shape.dim.map((d) => d.value.case === "dimValue" ? Number(d.value.value) : -1);
}

/** The default-domain opset version the model imports. */
export function opsetVersion(model: ModelProto): number {
  const entry = model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx");
  return entry ? Number(entry.version) : 0;
}

/** Map from tensor name to the node that produces it. */
export function producers(graph: GraphProto): Map<string, NodeProto> {
  const map = new Map<string, NodeProto>();
  for (const node of graph.node) for (const out of node.output) if (out) map.set(out, node);
  return map;
}

/** Map from tensor name to the nodes that read it. */
export function consumers(graph: GraphProto): Map<string, NodeProto[]> {
  const map = new Map<string, NodeProto[]>();
  for (const node of graph.node) {
    for (const inp of node.input) {
      if (!inp) continue;
      const list = map.get(inp) ?? [];
      list.push(node);
      map.set(inp, list);
    }
  }
  return map;
}

/**
 * A tensor value info of element type `elemType` (float by default) with unknown shape: enough for
 * onnxruntime to emit an output.
 */
export function tensorOutput(
  name: string,
  elemType: number = TensorProto_DataType.FLOAT,
): GraphProto["output"][number] {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: { case: "tensorType", value: create(TypeProto_TensorSchema, { elemType }) },
    }),
  });
}

/**
 * A shallow copy of `model` whose graph also outputs the tensors named in `names` (those already
 * outputs are kept once), each declared with its element type from `options.types` (ONNX
 * `TensorProto.DataType`; float when absent or 0: onnxruntime refuses a declared type that
 * differs, e.g. a `Shape` output declared float). The original model object is not modified.
 */
export function withOutputs(
  model: ModelProto,
  names: readonly string[],
  options: { types?: ReadonlyMap<string, number> } = {},
): ModelProto {
  const graph = model.graph!;
  const have = new Set(graph.output.map((o) => o.name));
  const extra = names.filter((n) => !have.has(n)).map((n) =>
    tensorOutput(n, options.types?.get(n) || TensorProto_DataType.FLOAT)
  );
  const newGraph = { ...graph, output: [...graph.output, ...extra] } as GraphProto;
  return { ...model, graph: newGraph } as ModelProto;
}
