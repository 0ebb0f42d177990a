/**
 * Programmatic ONNX graph construction: a {@linkcode GraphBuilder} that emits nodes and constant
 * initializers under names that never collide, plus helpers to read attributes and small tensors
 * and to assemble a {@linkcode ModelProto}. Used by the differentiator and by tests that build
 * single-op models.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  type AttributeProto,
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  type TensorProto,
  TensorProto_DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from "onnx-buf";

export type { AttributeProto, TensorProto, ValueInfoProto };

/**
 * An attribute value. Plain numbers and number arrays are INT / INTS (they must be integers);
 * floats are spelled `{ f }` / `{ floats }`; strings are STRING; a `TensorProto` is TENSOR; an
 * `AttributeProto` is copied under the new name.
 */
export type AttrValue =
  | number
  | readonly number[]
  | string
  | { readonly f: number }
  | { readonly floats: readonly number[] }
  | TensorProto
  | AttributeProto;

/** Element types this module writes. */
export type ElemType = "float" | "int64" | "int32" | "bool";

const ELEM: Record<ElemType, TensorProto_DataType> = {
  float: TensorProto_DataType.FLOAT,
  int64: TensorProto_DataType.INT64,
  int32: TensorProto_DataType.INT32,
  bool: TensorProto_DataType.BOOL,
};

function isMessage(v: unknown, typeName: string): boolean {
  return typeof v === "object" && v !== null &&
    (v as { $typeName?: string }).$typeName === typeName;
}

/** Make an attribute proto named `name` from a value (see {@linkcode AttrValue}). */
export function makeAttribute(name: string, value: AttrValue): AttributeProto {
  const A = AttributeProto_AttributeType;
  if (isMessage(value, "onnx.AttributeProto")) {
    return create(AttributeProtoSchema, { ...(value as AttributeProto), name });
  }
  if (isMessage(value, "onnx.TensorProto")) {
    return create(AttributeProtoSchema, { name, type: A.TENSOR, t: value as TensorProto });
  }
  if (typeof value === "number") {
    if (!Number.isInteger(value)) {
      throw new Error(`Cannot make attribute "${name}": ${value} is not an integer, use { f }`);
    }
    return create(AttributeProtoSchema, { name, type: A.INT, i: BigInt(value) });
  }
  if (typeof value === "string") {
    return create(AttributeProtoSchema, {
      name,
      type: A.STRING,
      s: new TextEncoder().encode(value),
    });
  }
  if (Array.isArray(value)) {
    const ints = value as readonly number[];
    if (!ints.every(Number.isInteger)) {
      throw new Error(
        `Cannot make attribute "${name}": [${ints}] are not integers, use { floats }`,
      );
    }
    return create(AttributeProtoSchema, { name, type: A.INTS, ints: ints.map((v) => BigInt(v)) });
  }
  if ("f" in value) return create(AttributeProtoSchema, { name, type: A.FLOAT, f: value.f });
  if ("floats" in value) {
    return create(AttributeProtoSchema, { name, type: A.FLOATS, floats: [...value.floats] });
  }
  throw new Error(`Cannot make attribute "${name}": unsupported value`);
}

/** Make a tensor proto holding `values` (row-major) with shape `dims`. */
export function makeTensor(
  name: string,
  values: ArrayLike<number>,
  options: { dims?: readonly number[]; type?: ElemType } = {},
): TensorProto {
  const type = options.type ?? "float";
  const dims = options.dims ?? [values.length];
  const n = dims.reduce((a, b) => a * b, 1);
  if (n !== values.length) {
    throw new Error(
      `Cannot make tensor "${name}": ${values.length} values but dims [${dims}] need ${n}`,
    );
  }
  let raw: Uint8Array<ArrayBuffer>;
  if (type === "float") raw = new Uint8Array(Float32Array.from(values).buffer);
  else if (type === "int32") raw = new Uint8Array(Int32Array.from(values).buffer);
  else if (type === "bool") raw = Uint8Array.from(values, (v) => (v ? 1 : 0));
  else raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
  return create(TensorProtoSchema, {
    name,
    dims: dims.map((d) => BigInt(d)),
    dataType: ELEM[type],
    rawData: raw,
  });
}

/**
 * The values of a tensor proto as numbers (int64 converted, which is exact below 2^53), or
 * `undefined` when its data type is not a float or integer type or the data is external.
 */
export function tensorValues(t: TensorProto): number[] | undefined {
  const T = TensorProto_DataType;
  const n = t.dims.reduce((a, b) => a * Number(b), 1);
  const raw = t.rawData;
  if (t.dataLocation === 1) return undefined;
  if (raw && raw.length > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      switch (t.dataType) {
        case T.FLOAT:
          out[i] = view.getFloat32(i * 4, true);
          break;
        case T.DOUBLE:
          out[i] = view.getFloat64(i * 8, true);
          break;
        case T.INT64:
          out[i] = Number(view.getBigInt64(i * 8, true));
          break;
        case T.UINT64:
          out[i] = Number(view.getBigUint64(i * 8, true));
          break;
        case T.INT32:
          out[i] = view.getInt32(i * 4, true);
          break;
        case T.UINT32:
          out[i] = view.getUint32(i * 4, true);
          break;
        case T.INT16:
          out[i] = view.getInt16(i * 2, true);
          break;
        case T.UINT16:
          out[i] = view.getUint16(i * 2, true);
          break;
        case T.INT8:
          out[i] = view.getInt8(i);
          break;
        case T.UINT8:
        case T.BOOL:
          out[i] = view.getUint8(i);
          break;
        default:
          return undefined;
      }
    }
    return out;
  }
  switch (t.dataType) {
    case T.FLOAT:
      return [...t.floatData];
    case T.DOUBLE:
      return [...t.doubleData];
    case T.INT64:
      return t.int64Data.map(Number);
    case T.UINT64:
      return t.uint64Data.map(Number);
    case T.INT32:
    case T.INT16:
    case T.INT8:
    case T.UINT16:
    case T.UINT8:
    case T.BOOL:
      return [...t.int32Data];
    default:
      return undefined;
  }
}

/** The attribute of `node` called `name`, if present. */
export function getAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** An INT attribute as a number, or `undefined` when absent. */
export function attrInt(node: NodeProto, name: string): number | undefined {
  const a = getAttr(node, name);
  return a ? Number(a.i) : undefined;
}

/** A FLOAT attribute, or `undefined` when absent. */
export function attrFloat(node: NodeProto, name: string): number | undefined {
  const a = getAttr(node, name);
  return a ? a.f : undefined;
}

/** An INTS attribute as numbers, or `undefined` when absent. */
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = getAttr(node, name);
  return a ? a.ints.map(Number) : undefined;
}

/** A STRING attribute decoded as UTF-8, or `undefined` when absent. */
export function attrString(node: NodeProto, name: string): string | undefined {
  const a = getAttr(node, name);
  return a ? new TextDecoder().decode(a.s) : undefined;
}

/** A value info for a tensor; `dims` entries may be numbers or symbolic names; no dims = any. */
export function makeValueInfo(
  name: string,
  options: { dims?: readonly (number | string)[]; type?: ElemType } = {},
): ValueInfoProto {
  const shape = options.dims
    ? create(TensorShapeProtoSchema, {
      dim: options.dims.map((d) =>
        create(TensorShapeProto_DimensionSchema, {
          value: typeof d === "number"
            ? { case: "dimValue", value: BigInt(d) }
            : { case: "dimParam", value: d },
        })
      ),
    })
    : undefined;
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: "tensorType",
        value: create(TypeProto_TensorSchema, { elemType: ELEM[options.type ?? "float"], shape }),
      },
    }),
  });
}

/** What {@linkcode makeModel} assembles into a model. */
export interface ModelParts {
  /** Graph inputs. */
  inputs: readonly ValueInfoProto[];
  /** Graph outputs. */
  outputs: readonly ValueInfoProto[];
  /** Nodes in topological order. */
  nodes: readonly NodeProto[];
  /** Weights and constants. */
  initializers?: readonly TensorProto[];
  /** Default-domain opset (17 unless given). */
  opset?: number;
  /** Graph name. */
  name?: string;
}

/** Assemble a model proto (IR version 8). */
export function makeModel(parts: ModelParts): ModelProto {
  const opset = parts.opset ?? 17;
  return create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: "lantern",
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(opset) })],
    graph: create(GraphProtoSchema, {
      name: parts.name ?? "graph",
      node: [...parts.nodes],
      input: [...parts.inputs],
      output: [...parts.outputs],
      initializer: [...(parts.initializers ?? [])],
    }),
  });
}

/** Options of {@linkcode GraphBuilder.node}. */
export interface NodeOptions {
  /** Attributes by name. */
  attrs?: Readonly<Record<string, AttrValue | undefined>>;
  /** Number of outputs (fresh names), or the exact output names. Default 1. */
  outputs?: number | readonly string[];
  /** Base for the node name and fresh output names. */
  name?: string;
}

/**
 * Emits nodes and constants into lists, choosing fresh names that avoid every name reserved so
 * far. Small constants with the same value and shape are shared.
 */
export class GraphBuilder {
  /** Emitted nodes, in emission order. */
  readonly nodes: NodeProto[] = [];
  /** Emitted constant initializers. */
  readonly initializers: TensorProto[] = [];
  #taken: Set<string>;
  #counter = 0;
  #constCache = new Map<string, string>();
  #prefix: string;

  /** Start a builder that avoids the names in `taken`; fresh names start with `prefix`. */
  constructor(taken: Iterable<string> = [], options: { prefix?: string } = {}) {
    this.#taken = new Set(taken);
    this.#prefix = options.prefix ?? "";
  }

  /** Mark `name` as used. */
  reserve(name: string): void {
    this.#taken.add(name);
  }

  /** Whether `name` is used. */
  has(name: string): boolean {
    return this.#taken.has(name);
  }

  /** A new unused name based on `base` (reserved on return). */
  fresh(base: string): string {
    let name = `${this.#prefix}${base}`;
    while (this.#taken.has(name)) name = `${this.#prefix}${base}_${++this.#counter}`;
    this.#taken.add(name);
    return name;
  }

  /** Emit a node and return its output names. */
  node(opType: string, inputs: readonly string[], options: NodeOptions = {}): string[] {
    const base = options.name ?? opType.toLowerCase();
    const outputs = typeof options.outputs === "object"
      ? [...options.outputs]
      : Array.from({ length: options.outputs ?? 1 }, () => this.fresh(base));
    for (const o of outputs) this.reserve(o);
    const attribute: AttributeProto[] = [];
    for (const [k, v] of Object.entries(options.attrs ?? {})) {
      if (v !== undefined) attribute.push(makeAttribute(k, v));
    }
    this.nodes.push(
      create(NodeProtoSchema, {
        name: this.fresh(`${base}_node`),
        opType,
        input: [...inputs],
        output: outputs,
        attribute,
      }),
    );
    return outputs;
  }

  /** Emit a one-output node and return the output name. */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, AttrValue | undefined>> = {},
  ): string {
    return this.node(opType, inputs, { attrs })[0];
  }

  /** A constant initializer (shared with an earlier one of equal value, shape and type). */
  constant(
    values: ArrayLike<number>,
    options: { dims?: readonly number[]; type?: ElemType } = {},
  ): string {
    const type = options.type ?? "float";
    const dims = options.dims ?? [values.length];
    const small = values.length <= 64;
    const key = small ? `${type}|${dims}|${Array.from(values).join(",")}` : "";
    if (small) {
      const hit = this.#constCache.get(key);
      if (hit) return hit;
    }
    const name = this.fresh(type === "float" ? "const" : `const_${type}`);
    this.initializers.push(makeTensor(name, values, { dims, type }));
    if (small) this.#constCache.set(key, name);
    return name;
  }

  /** A float scalar constant (rank 0). */
  scalar(value: number): string {
    return this.constant([value], { dims: [] });
  }

  /** A 1-D int64 constant. */
  ints(values: readonly number[]): string {
    return this.constant(values, { type: "int64" });
  }
}
