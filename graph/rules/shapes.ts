/**
 * Static shape, type and small-value inference over an ONNX graph, with symbolic dims.
 *
 * A dim is a number, a symbolic product such as `"N"` or `"2*N"` (so the batch axis and the
 * `-1` of a Reshape can be tracked through a network), or `null` when unknown. Small integer
 * tensors that describe shapes (`Shape` → `Gather` → `Concat` → `Reshape` chains, constants)
 * carry their values, so reshapes computed in the graph still get static output shapes.
 * Backward rules use this to choose static formulations (ReduceSum axes, ConvTranspose
 * output_padding, pooling divisors); where a dim stays unknown they fall back to in-graph shapes.
 *
 * @module
 */
import { TensorProto_DataType } from "onnx-buf";
import type { GraphProto, NodeProto } from "../onnx_io.ts";
import { attrInt, attrInts, attrString, getAttr, tensorValues } from "../builder.ts";

/** A dimension: a number, a symbolic product like `"N"` or `"3*N*M"`, or `null` if unknown. */
export type Dim = number | string | null;

/** What is known about one tensor. */
export interface TensorInfo {
  /** Dims, or `undefined` when even the rank is unknown. */
  dims?: Dim[];
  /** ONNX element type (`TensorProto_DataType`), 0 when unknown. */
  type: number;
  /** Row-major values of a small tensor (entries may be symbolic or unknown). */
  value?: Dim[];
}

const T = TensorProto_DataType;
const MAX_VALUES = 1024;

function parseSym(d: string): { c: number; s: string[] } {
  let c = 1;
  const s: string[] = [];
  for (const f of d.split("*")) {
    if (/^-?\d+$/.test(f)) c *= Number(f);
    else s.push(f);
  }
  return { c, s: s.sort() };
}

function formatSym(c: number, s: string[]): Dim {
  if (s.length === 0) return c;
  const sorted = [...s].sort();
  return c === 1 ? sorted.join("*") : `${c}*${sorted.join("*")}`;
}

/** Product of two dims (symbolic products are kept). */
export function mulDim(a: Dim, b: Dim): Dim {
  if (a === null || b === null) return null;
  if (typeof a === "number" && typeof b === "number") return a * b;
  if (a === 0 || b === 0) return 0;
  const pa = typeof a === "number" ? { c: a, s: [] } : parseSym(a);
  const pb = typeof b === "number" ? { c: b, s: [] } : parseSym(b);
  return formatSym(pa.c * pb.c, [...pa.s, ...pb.s]);
}

/** Exact quotient of two dims, or `null` when it is not a whole dim. */
export function divDim(a: Dim, b: Dim): Dim {
  if (a === null || b === null || b === 0) return null;
  if (typeof a === "number" && typeof b === "number") return a % b === 0 ? a / b : null;
  const pa = typeof a === "number" ? { c: a, s: [] } : parseSym(a);
  const pb = typeof b === "number" ? { c: b, s: [] } : parseSym(b);
  const s = [...pa.s];
  for (const sym of pb.s) {
    const i = s.indexOf(sym);
    if (i < 0) return null;
    s.splice(i, 1);
  }
  if (pa.c % pb.c !== 0) return null;
  return formatSym(pa.c / pb.c, s);
}

/** Product of dims. */
export function prodDims(dims: readonly Dim[]): Dim {
  return dims.reduce<Dim>((p, d) => mulDim(p, d), 1);
}

/** Whether every dim is a number. */
export function isStatic(dims: readonly Dim[] | undefined): dims is number[] {
  return !!dims && dims.every((d) => typeof d === "number");
}

/** Broadcast two dims under numpy rules; `null` when the result cannot be known. */
function broadcastDim(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  if (typeof a === "number" && a !== null) return a;
  if (typeof b === "number" && b !== null) return b;
  return null;
}

/** Numpy broadcast of several shapes. */
export function broadcastShapes(shapes: readonly (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => !s)) return undefined;
  const rank = Math.max(...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = i - (rank - s!.length);
      if (k >= 0) d = broadcastDim(d, s![k]);
    }
    out.push(d);
  }
  return out;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function numbers(v: Dim[] | undefined): number[] | undefined {
  return v && v.every((x) => typeof x === "number") ? (v as number[]) : undefined;
}

function floorDiv(a: number, b: number): number {
  return Math.floor(a / b);
}

/** Output spatial size of a convolution or pooling window sweep. */
export function windowOutput(
  size: Dim,
  options: { k: number; s: number; d: number; pb: number; pe: number; ceil?: boolean },
): Dim {
  if (typeof size !== "number") return null;
  const eff = (options.k - 1) * options.d + 1;
  const span = size + options.pb + options.pe - eff;
  if (!options.ceil) return floorDiv(span, options.s) + 1;
  let out = Math.ceil(span / options.s) + 1;
  // A last window that starts inside the end padding is dropped (torch and onnxruntime agree).
  if ((out - 1) * options.s >= size + options.pb) out--;
  return out;
}

/** Explicit begin/end pads of a conv/pool node for its spatial sizes (resolving auto_pad). */
export function resolvePads(
  node: NodeProto,
  spatial: readonly Dim[],
  options: { kernel: readonly number[]; strides: readonly number[]; dilations: readonly number[] },
): { begin: number[]; end: number[] } | undefined {
  const n = options.kernel.length;
  const autoPad = attrString(node, "auto_pad") ?? "NOTSET";
  if (autoPad === "NOTSET" || autoPad === "VALID") {
    const pads = autoPad === "VALID" ? new Array(2 * n).fill(0) : attrInts(node, "pads") ??
      new Array(2 * n).fill(0);
    return { begin: pads.slice(0, n), end: pads.slice(n) };
  }
  const begin: number[] = [], end: number[] = [];
  for (let i = 0; i < n; i++) {
    const size = spatial[i];
    if (typeof size !== "number") return undefined;
    const out = Math.ceil(size / options.strides[i]);
    const eff = (options.kernel[i] - 1) * options.dilations[i] + 1;
    const total = Math.max(0, (out - 1) * options.strides[i] + eff - size);
    const small = Math.floor(total / 2);
    if (autoPad === "SAME_UPPER") {
      begin.push(small);
      end.push(total - small);
    } else {
      begin.push(total - small);
      end.push(small);
    }
  }
  return { begin, end };
}

/** Kernel, strides, dilations and resolved pads of a Conv/ConvTranspose/pool node. */
export interface ConvWindow {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: { begin: number[]; end: number[] };
}

/** Kernel, strides, dilations and pads (unless `auto_pad` needs unknown dims) of a window node. */
export function windowParams(
  node: NodeProto,
  info: ShapeInfo,
): Omit<ConvWindow, "pads"> & { pads?: ConvWindow["pads"] } | undefined {
  const x = info.get(node.input[0]);
  let kernel = attrInts(node, "kernel_shape");
  if (!kernel && node.input[1]) {
    const w = info.get(node.input[1])?.dims;
    if (w && w.slice(2).every((d) => typeof d === "number")) kernel = w.slice(2) as number[];
  }
  if (!kernel) return undefined;
  const n = kernel.length;
  const strides = attrInts(node, "strides") ?? new Array(n).fill(1);
  const dilations = attrInts(node, "dilations") ?? new Array(n).fill(1);
  const pads = x?.dims ? resolvePads(node, x.dims.slice(2), { kernel, strides, dilations }) : (
    (attrString(node, "auto_pad") ?? "NOTSET").startsWith("SAME")
      ? undefined
      : resolvePads(node, [], { kernel, strides, dilations })
  );
  return { kernel, strides, dilations, pads };
}

/** Shape/type/value facts for every tensor of a graph. */
export class ShapeInfo {
  #map = new Map<string, TensorInfo>();
  #fresh = 0;

  /** Facts about `name` (an empty record when nothing is known). */
  get(name: string): TensorInfo {
    return this.#map.get(name) ?? { type: 0 };
  }

  /** Record facts about `name`. */
  set(name: string, info: TensorInfo): void {
    this.#map.set(name, info);
  }

  /** Rank of `name`, or `undefined`. */
  rank(name: string): number | undefined {
    return this.#map.get(name)?.dims?.length;
  }

  /** A new symbol for a dim that is fixed but unknown. */
  freshSymbol(): string {
    return `?${++this.#fresh}`;
  }
}

function valueInfoFacts(
  vi: GraphProto["input"][number],
  info: ShapeInfo,
): TensorInfo {
  const t = vi.type?.value;
  if (!t || t.case !== "tensorType") return { type: 0 };
  const shape = t.value.shape;
  const dims = shape?.dim.map((d): Dim => {
    if (d.value.case === "dimValue") return Number(d.value.value);
    if (d.value.case === "dimParam" && d.value.value) return d.value.value.replaceAll("*", "_");
    return info.freshSymbol();
  });
  return { dims, type: t.value.elemType };
}

/**
 * Infer facts for every tensor of `graph` (its nodes must be topologically sorted). `nodes`
 * overrides the graph's node list (e.g. after opset upgrading).
 */
export function inferShapes(
  graph: GraphProto,
  nodes: readonly NodeProto[] = graph.node,
): ShapeInfo {
  const info = new ShapeInfo();
  for (const t of graph.initializer) {
    const dims = t.dims.map(Number);
    const size = dims.reduce((a, b) => a * b, 1);
    const value = size <= MAX_VALUES ? tensorValues(t) : undefined;
    info.set(t.name, { dims, type: t.dataType, value });
  }
  for (const vi of graph.input) {
    if (!info.get(vi.name).dims) info.set(vi.name, valueInfoFacts(vi, info));
  }
  const hints = new Map<string, GraphProto["input"][number]>();
  for (const vi of [...graph.valueInfo, ...graph.output]) hints.set(vi.name, vi);
  for (const node of nodes) {
    let outs: TensorInfo[];
    try {
      outs = inferNode(node, info);
    } catch {
      outs = [];
    }
    node.output.forEach((name, i) => {
      if (!name) return;
      let facts = outs[i] ?? { type: 0 };
      const hint = hints.get(name);
      if (hint) {
        const h = valueInfoFacts(hint, info);
        if (!facts.dims && h.dims) facts = { ...facts, dims: h.dims };
        else if (facts.dims && h.dims && h.dims.length === facts.dims.length) {
          facts = {
            ...facts,
            dims: facts.dims.map((d, k) =>
              d === null && typeof h.dims![k] === "number" ? h.dims![k] : d
            ),
          };
        }
        if (!facts.type) facts = { ...facts, type: h.type };
      }
      info.set(name, facts);
    });
  }
  return info;
}

function same(x: TensorInfo): TensorInfo {
  return { dims: x.dims, type: x.type };
}

function elementwiseValue(
  op: string,
  a: Dim[] | undefined,
  b: Dim[] | undefined,
): Dim[] | undefined {
  if (!a || !b) return undefined;
  const n = Math.max(a.length, b.length);
  if ((a.length !== n && a.length !== 1) || (b.length !== n && b.length !== 1)) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length === 1 ? 0 : i], y = b[b.length === 1 ? 0 : i];
    if (typeof x === "number" && typeof y === "number") {
      switch (op) {
        case "Add":
          out.push(x + y);
          break;
        case "Sub":
          out.push(x - y);
          break;
        case "Mul":
          out.push(x * y);
          break;
        case "Div":
          out.push(Math.trunc(x / y));
          break;
        case "Equal":
          out.push(x === y ? 1 : 0);
          break;
        case "Less":
          out.push(x < y ? 1 : 0);
          break;
        case "Greater":
          out.push(x > y ? 1 : 0);
          break;
        default:
          return undefined;
      }
    } else if (op === "Mul") out.push(mulDim(x, y));
    else if (op === "Div") out.push(divDim(x, y));
    else if (op === "Equal" && typeof y === "number" && y <= 0 && typeof x === "string") {
      out.push(0);
    } else if (op === "Equal" && typeof x === "number" && x <= 0 && typeof y === "string") {
      out.push(0);
    } else if (op === "Equal" && x !== null && x === y) out.push(1);
    else out.push(null);
  }
  return out;
}

/** The known numeric value of tensor `name` (e.g. a constant input), if any. */
export function constValue(info: ShapeInfo, name: string | undefined): number[] | undefined {
  if (!name) return undefined;
  return numbers(info.get(name).value);
}

function axesOf(node: NodeProto, info: ShapeInfo, inputIndex: number): number[] | undefined {
  const attr = attrInts(node, "axes");
  if (attr) return attr;
  if (node.input[inputIndex]) return constValue(info, node.input[inputIndex]);
  return undefined;
}

function inferNode(node: NodeProto, info: ShapeInfo): TensorInfo[] {
  const inp = node.input.map((n) => (n ? info.get(n) : { type: 0 }));
  const x = inp[0] ?? { type: 0 };
  const op = node.domain && node.domain !== "ai.onnx"
    ? `${node.domain}.${node.opType}`
    : node.opType;
  switch (op) {
    case "Relu":
    case "Sigmoid":
    case "Tanh":
    case "Erf":
    case "Exp":
    case "Log":
    case "Sqrt":
    case "Neg":
    case "Abs":
    case "Reciprocal":
    case "Floor":
    case "Ceil":
    case "Round":
    case "Sign":
    case "Clip":
    case "LeakyRelu":
    case "HardSigmoid":
    case "HardSwish":
    case "Elu":
    case "Selu":
    case "Softplus":
    case "Softsign":
    case "Softmax":
    case "LogSoftmax":
    case "BatchNormalization":
    case "InstanceNormalization":
    case "LRN":
    case "CumSum":
    case "Sin":
    case "Cos":
    case "Mish":
    case "Gelu":
      return [same(x)];
    case "Identity":
    case "Dropout":
      return [{ ...x }, { dims: x.dims, type: T.BOOL }];
    case "LayerNormalization": {
      const axis = attrInt(node, "axis") ?? -1;
      const r = x.dims?.length;
      const stat = x.dims && r !== undefined
        ? x.dims.map((d, i) => (i < normAxis(axis, r) ? d : 1))
        : undefined;
      return [same(x), { dims: stat, type: x.type }, { dims: stat, type: x.type }];
    }
    case "Cast": {
      const to = attrInt(node, "to") ?? 0;
      const value = x.value?.map((v) =>
        typeof v === "number" && to !== T.FLOAT && to !== T.DOUBLE ? Math.trunc(v) : v
      );
      return [{ dims: x.dims, type: to, value }];
    }
    case "Not":
    case "IsNaN":
    case "IsInf":
      return [{ dims: x.dims, type: T.BOOL }];
    case "Add":
    case "Sub":
    case "Mul":
    case "Div":
    case "Pow":
    case "Max":
    case "Min":
    case "Sum":
    case "Mean":
    case "Mod":
    case "PRelu":
    case "Equal":
    case "Less":
    case "Greater":
    case "LessOrEqual":
    case "GreaterOrEqual":
    case "And":
    case "Or":
    case "Xor": {
      const dims = broadcastShapes(inp.map((i) => i.dims));
      const bool = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"]
        .includes(op);
      const value = inp.length === 2 ? elementwiseValue(op, inp[0].value, inp[1].value) : undefined;
      return [{ dims, type: bool ? T.BOOL : x.type, value }];
    }
    case "Where": {
      const dims = broadcastShapes(inp.map((i) => i.dims));
      let value: Dim[] | undefined;
      const [c, a, b] = inp.map((i) => i.value);
      if (c && a && b && c.every((v) => typeof v === "number")) {
        const n = Math.max(c.length, a.length, b.length);
        value = Array.from(
          { length: n },
          (_, k) =>
            (c[c.length === 1 ? 0 : k] as number)
              ? a[a.length === 1 ? 0 : k]
              : b[b.length === 1 ? 0 : k],
        );
      }
      return [{ dims, type: inp[1].type, value }];
    }
    case "Conv":
    case "MaxPool":
    case "AveragePool":
    case "LpPool": {
      const wp = windowParams(node, info);
      if (!x.dims || !wp || !wp.pads) return [{ type: x.type }];
      const ceil = (attrInt(node, "ceil_mode") ?? 0) === 1;
      const spatial = x.dims.slice(2).map((d, i) =>
        windowOutput(d, {
          k: wp.kernel[i],
          s: wp.strides[i],
          d: wp.dilations[i],
          pb: wp.pads!.begin[i],
          pe: wp.pads!.end[i],
          ceil,
        })
      );
      const c = op === "Conv" ? (inp[1].dims?.[0] ?? null) : x.dims[1];
      const out = { dims: [x.dims[0], c, ...spatial], type: x.type };
      return op === "MaxPool" ? [out, { dims: out.dims, type: T.INT64 }] : [out];
    }
    case "ConvTranspose": {
      const wp = windowParams(node, info);
      const w = inp[1].dims;
      const group = attrInt(node, "group") ?? 1;
      const c = w && w[1] !== null ? mulDim(w[1], group) : null;
      if (!x.dims || !wp) return [{ type: x.type }];
      const outShape = attrInts(node, "output_shape");
      const op2 = attrInts(node, "output_padding") ?? wp.kernel.map(() => 0);
      const spatial = x.dims.slice(2).map((d, i): Dim => {
        if (outShape) return outShape[outShape.length - wp.kernel.length + i];
        if (typeof d !== "number" || !wp.pads) return null;
        return wp.strides[i] * (d - 1) + op2[i] + (wp.kernel[i] - 1) * wp.dilations[i] + 1 -
          wp.pads.begin[i] - wp.pads.end[i];
      });
      return [{ dims: [x.dims[0], c, ...spatial], type: x.type }];
    }
    case "GlobalAveragePool":
    case "GlobalMaxPool":
    case "GlobalLpPool":
      return [{
        dims: x.dims ? [x.dims[0], x.dims[1], ...x.dims.slice(2).map(() => 1)] : undefined,
        type: x.type,
      }];
    case "Gemm": {
      const a = x.dims, b = inp[1].dims;
      const m = a ? ((attrInt(node, "transA") ?? 0) ? a[1] : a[0]) : null;
      const n = b ? ((attrInt(node, "transB") ?? 0) ? b[0] : b[1]) : null;
      return [{ dims: [m, n], type: x.type }];
    }
    case "MatMul": {
      const a = x.dims, b = inp[1].dims;
      if (!a || !b) return [{ type: x.type }];
      const a2 = a.length === 1 ? [1, a[0]] : a;
      const b2 = b.length === 1 ? [b[0], 1] : b;
      const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]) ?? [];
      const dims: Dim[] = [...batch];
      if (a.length > 1) dims.push(a2[a2.length - 2]);
      if (b.length > 1) dims.push(b2[b2.length - 1]);
      return [{ dims, type: x.type }];
    }
    case "ReduceMean":
    case "ReduceSum":
    case "ReduceMax":
    case "ReduceMin":
    case "ReduceProd":
    case "ReduceL1":
    case "ReduceL2":
    case "ReduceLogSumExp":
    case "ReduceSumSquare":
    case "ArgMax":
    case "ArgMin": {
      if (!x.dims) return [{ type: x.type }];
      const r = x.dims.length;
      const keep = (attrInt(node, "keepdims") ?? 1) === 1;
      let axes: number[] | undefined;
      if (op === "ArgMax" || op === "ArgMin") axes = [attrInt(node, "axis") ?? 0];
      else axes = axesOf(node, info, 1);
      if (!axes && node.input[1]) return [{ type: x.type }];
      if (!axes || axes.length === 0) {
        axes = (attrInt(node, "noop_with_empty_axes") ?? 0) && (op !== "ArgMax" && op !== "ArgMin")
          ? []
          : x.dims.map((_, i) => i);
      }
      const set = new Set(axes.map((a) => normAxis(a, r)));
      const dims = keep
        ? x.dims.map((d, i) => (set.has(i) ? 1 : d))
        : x.dims.filter((_, i) => !set.has(i));
      const type = op.startsWith("Arg") ? T.INT64 : x.type;
      return [{ dims, type }];
    }
    case "Concat": {
      if (inp.some((i) => !i.dims)) return [{ type: x.type }];
      const r = x.dims!.length;
      const axis = normAxis(attrInt(node, "axis") ?? 0, r);
      const dims = [...x.dims!];
      dims[axis] = inp.slice(1).reduce<Dim>((s, i) => addDim(s, i.dims![axis]), x.dims![axis]);
      let value: Dim[] | undefined;
      if (r === 1 && inp.every((i) => i.value)) value = inp.flatMap((i) => i.value!);
      return [{ dims, type: x.type, value }];
    }
    case "Split": {
      if (!x.dims) return node.output.map(() => ({ type: x.type }));
      const r = x.dims.length;
      const axis = normAxis(attrInt(node, "axis") ?? 0, r);
      let sizes = attrInts(node, "split") ?? constValue(info, node.input[1]);
      const total = x.dims[axis];
      if (!sizes && typeof total === "number") {
        const n = node.output.length;
        const chunk = Math.ceil(total / n);
        sizes = Array.from(
          { length: n },
          (_, i) => Math.max(0, Math.min(chunk, total - i * chunk)),
        );
      }
      return node.output.map((_, i) => {
        const dims = [...x.dims!];
        dims[axis] = sizes ? sizes[i] : null;
        return { dims, type: x.type };
      });
    }
    case "Slice": {
      if (!x.dims) return [{ type: x.type }];
      const starts = constValue(info, node.input[1]) ?? attrInts(node, "starts");
      const ends = constValue(info, node.input[2]) ?? attrInts(node, "ends");
      if (!starts || !ends) return [{ dims: x.dims.map(() => null), type: x.type }];
      const r = x.dims.length;
      const axes = (node.input[3] ? constValue(info, node.input[3]) : attrInts(node, "axes")) ??
        starts.map((_, i) => i);
      const steps = (node.input[4] ? constValue(info, node.input[4]) : undefined) ??
        starts.map(() => 1);
      const dims = [...x.dims];
      let value: Dim[] | undefined;
      axes.forEach((a0, i) => {
        const a = normAxis(a0, r);
        const d = x.dims![a];
        if (typeof d !== "number") {
          dims[a] = null;
          return;
        }
        const [s, e] = sliceRange(d, { start: starts[i], end: ends[i], step: steps[i] });
        dims[a] = Math.max(0, Math.ceil((e - s) / steps[i]));
        if (r === 1 && x.value) {
          value = [];
          for (let k = s; steps[i] > 0 ? k < e : k > e; k += steps[i]) value.push(x.value[k]);
        }
      });
      return [{ dims, type: x.type, value }];
    }
    case "Transpose": {
      if (!x.dims) return [{ type: x.type }];
      const perm = attrInts(node, "perm") ?? x.dims.map((_, i) => x.dims!.length - 1 - i);
      return [{ dims: perm.map((p) => x.dims![p]), type: x.type }];
    }
    case "Reshape": {
      const shape = inp[1].value;
      if (!shape) {
        return [{
          dims: inp[1].dims && typeof inp[1].dims[0] === "number"
            ? new Array(inp[1].dims[0]).fill(null)
            : undefined,
          type: x.type,
        }];
      }
      const allowZero = (attrInt(node, "allowzero") ?? 0) === 1;
      const dims: Dim[] = shape.map((s, i) =>
        s === 0 && !allowZero ? (x.dims?.[i] ?? null) : s === -1 ? -1 : s
      );
      const neg = dims.indexOf(-1);
      if (neg >= 0) {
        const total = x.dims ? prodDims(x.dims) : null;
        const rest = prodDims(dims.filter((_, i) => i !== neg));
        dims[neg] = divDim(total, rest);
      }
      return [{ dims, type: x.type, value: x.value }];
    }
    case "Flatten": {
      if (!x.dims) return [{ type: x.type }];
      const axis = normAxis(attrInt(node, "axis") ?? 1, x.dims.length);
      return [{
        dims: [prodDims(x.dims.slice(0, axis)), prodDims(x.dims.slice(axis))],
        type: x.type,
        value: x.value,
      }];
    }
    case "Squeeze": {
      if (!x.dims) return [{ type: x.type }];
      const axes = axesOf(node, info, 1);
      const r = x.dims.length;
      if (!axes && node.input[1]) return [{ type: x.type }];
      const set = new Set(
        axes ? axes.map((a) => normAxis(a, r)) : x.dims.flatMap((d, i) => (d === 1 ? [i] : [])),
      );
      return [{ dims: x.dims.filter((_, i) => !set.has(i)), type: x.type, value: x.value }];
    }
    case "Unsqueeze": {
      if (!x.dims) return [{ type: x.type }];
      const axes = axesOf(node, info, 1);
      if (!axes) return [{ type: x.type }];
      const r = x.dims.length + axes.length;
      const set = new Set(axes.map((a) => normAxis(a, r)));
      const dims: Dim[] = [];
      let k = 0;
      for (let i = 0; i < r; i++) dims.push(set.has(i) ? 1 : x.dims[k++]);
      return [{ dims, type: x.type, value: x.value }];
    }
    case "Gather": {
      const idx = inp[1];
      if (!x.dims || !idx.dims) return [{ type: x.type }];
      const axis = normAxis(attrInt(node, "axis") ?? 0, x.dims.length);
      const dims = [...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)];
      let value: Dim[] | undefined;
      const iv = numbers(idx.value);
      if (x.dims.length === 1 && x.value && iv) {
        value = iv.map((i) => x.value![i < 0 ? i + x.value!.length : i]);
      }
      return [{ dims, type: x.type, value }];
    }
    case "Shape": {
      if (!x.dims) return [{ dims: [null], type: T.INT64 }];
      const r = x.dims.length;
      let start = attrInt(node, "start") ?? 0, end = attrInt(node, "end") ?? r;
      start = Math.min(Math.max(normAxis(start, r), 0), r);
      end = Math.min(Math.max(normAxis(end, r), 0), r);
      const value = x.dims.slice(start, Math.max(start, end));
      return [{ dims: [value.length], type: T.INT64, value }];
    }
    case "Size":
      return [{ dims: [], type: T.INT64, value: x.dims ? [prodDims(x.dims)] : undefined }];
    case "Constant": {
      const a = node.attribute[0];
      if (!a) return [{ type: 0 }];
      if (a.name === "value" && a.t) {
        const dims = a.t.dims.map(Number);
        const size = dims.reduce((p, q) => p * q, 1);
        return [{
          dims,
          type: a.t.dataType,
          value: size <= MAX_VALUES ? tensorValues(a.t) : undefined,
        }];
      }
      if (a.name === "value_float") return [{ dims: [], type: T.FLOAT, value: [a.f] }];
      if (a.name === "value_floats") {
        return [{ dims: [a.floats.length], type: T.FLOAT, value: [...a.floats] }];
      }
      if (a.name === "value_int") return [{ dims: [], type: T.INT64, value: [Number(a.i)] }];
      if (a.name === "value_ints") {
        return [{ dims: [a.ints.length], type: T.INT64, value: a.ints.map(Number) }];
      }
      return [{ type: 0 }];
    }
    case "ConstantOfShape": {
      const shape = x.value;
      const t = getAttr(node, "value")?.t;
      const fill = t ? (tensorValues(t)?.[0] ?? 0) : 0;
      const type = t ? t.dataType : T.FLOAT;
      if (!shape) {
        return [{
          dims: x.dims && typeof x.dims[0] === "number"
            ? new Array(x.dims[0]).fill(null)
            : undefined,
          type,
        }];
      }
      const size = prodDims(shape);
      const value = typeof size === "number" && size <= MAX_VALUES
        ? new Array(size).fill(fill)
        : undefined;
      return [{ dims: shape, type, value }];
    }
    case "Expand": {
      const shape = inp[1].value;
      if (!shape) return [{ type: x.type }];
      return [{ dims: broadcastShapes([x.dims, shape]), type: x.type }];
    }
    case "Tile": {
      const reps = inp[1].value;
      if (!x.dims || !reps) return [{ type: x.type }];
      return [{ dims: x.dims.map((d, i) => mulDim(d, reps[i])), type: x.type }];
    }
    case "Pad": {
      if (!x.dims) return [{ type: x.type }];
      const pads = constValue(info, node.input[1]) ?? attrInts(node, "pads");
      if (!pads) return [{ dims: x.dims.map(() => null), type: x.type }];
      const r = x.dims.length;
      const axes =
        (node.input[3] ? constValue(info, node.input[3]) : undefined)?.map((a) => normAxis(a, r)) ??
          x.dims.map((_, i) => i);
      const dims = [...x.dims];
      axes.forEach((a, i) => {
        dims[a] = addDim(addDim(dims[a], pads[i]), pads[i + axes.length]);
      });
      return [{ dims, type: x.type }];
    }
    case "Range": {
      const [s, l, d] = [0, 1, 2].map((i) => constValue(info, node.input[i])?.[0]);
      if (s === undefined || l === undefined || d === undefined) {
        return [{ dims: [null], type: x.type }];
      }
      const n = Math.max(0, Math.ceil((l - s) / d));
      const value = n <= MAX_VALUES ? Array.from({ length: n }, (_, i) => s + i * d) : undefined;
      return [{ dims: [n], type: x.type, value }];
    }
    case "Resize":
    case "Upsample": {
      if (!x.dims) return [{ type: x.type }];
      const sizes = node.input[3] ? constValue(info, node.input[3]) : undefined;
      if (sizes) return [{ dims: sizes, type: x.type }];
      const scales = constValue(info, node.input[op === "Upsample" ? 1 : 2]) ??
        getAttr(node, "scales")?.floats;
      if (scales && scales.length === x.dims.length) {
        return [{
          dims: x.dims.map((
            d,
            i,
          ) => (typeof d === "number" ? Math.floor(d * scales[i]) : scales[i] === 1 ? d : null)),
          type: x.type,
        }];
      }
      return [{ dims: x.dims.map(() => null), type: x.type }];
    }
    case "NonZero":
      return [{ dims: [x.dims?.length ?? null, null], type: T.INT64 }];
    case "TopK": {
      const k = constValue(info, node.input[1])?.[0] ?? null;
      if (!x.dims) return [{ type: x.type }, { type: T.INT64 }];
      const axis = normAxis(attrInt(node, "axis") ?? -1, x.dims.length);
      const dims = x.dims.map((d, i) => (i === axis ? k : d));
      return [{ dims, type: x.type }, { dims, type: T.INT64 }];
    }
    default:
      return [];
  }
}

/** a + b; a symbolic dim plus 0 (a Pad that leaves the batch axis alone) stays itself. */
function addDim(a: Dim, b: Dim): Dim {
  if (b === 0) return a;
  return typeof a === "number" && typeof b === "number" ? a + b : null;
}

/** Clamped [start, end) of a Slice along an axis of size `d` (ONNX semantics). */
export function sliceRange(
  d: number,
  options: { start: number; end: number; step: number },
): [number, number] {
  const { start, end, step } = options;
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), d);
    e = Math.min(Math.max(e, 0), d);
  } else {
    s = Math.min(Math.max(s, -1), d - 1);
    e = Math.min(Math.max(e, -1), d - 1);
  }
  return [s, e];
}
