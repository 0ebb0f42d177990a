/**
 * Reverse-mode differentiation of ONNX graphs: turns a forward model into one model that
 * computes the forward pass and the gradient of one tensor with respect to others, runnable by
 * onnxruntime-web on the WASM and WebGPU execution providers.
 *
 * The caller feeds a seed `dL/d(of)` (same shape as `of`, batch axis included), so any target
 * is expressible: a one-hot over logits, a weighted sum, a channel or a single neuron of a
 * layer. Only nodes on paths between `wrt` and `of` get backward nodes, no gradients are
 * computed for weights, fan-out is accumulated with `Add`, and forward outputs are reused by the
 * backward rules. The model's opset is raised to at least 16 (never to 18, where ReduceMean
 * changes form) and older nodes are rewritten to keep their meaning.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  GraphProtoSchema,
  ModelProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProto_DataType,
} from "onnx-buf";
import {
  decodeModel,
  encodeModel,
  initializerNames,
  type ModelProto,
  type NodeProto,
  opsetVersion,
  producers,
} from "./onnx_io.ts";
import { didYouMean, LanternError } from "../pipeline/errors.ts";
import { GraphBuilder, makeValueInfo } from "./builder.ts";
import { inferShapes } from "./rules/shapes.ts";
import { upgradeNodes } from "./rules/upgrade.ts";
import { differentiableOps, type ReluRule, RuleError, RULES } from "./rules/mod.ts";
import type { RuleContext } from "./rules/common.ts";

export type { ReluRule };

/** What to differentiate. */
export interface GradientSpec {
  /** Tensor to differentiate (e.g. the logits output or any intermediate). */
  of: string;
  /** Tensors to differentiate with respect to: the graph input and/or intermediate tensors. */
  wrt: readonly string[];
  /**
   * ReLU rule applied to every `Relu` node and every ReLU-like `Clip` node (constant min = 0,
   * any or no max, e.g. ReLU6) on a gradient path; other Clips, LeakyRelu and the like always
   * use their true derivative. With `y` the node's output and `dy` its upstream gradient:
   * - `"standard"` (default): `dx = dy · [y > 0]`, and for Clip also `· [y < max]`;
   * - `"guided"` (Springenberg et al. 2015): `dx = max(dy, 0) · [y > 0]` (Clip: `· [y < max]`);
   * - `"deconvnet"` (Zeiler & Fergus 2014): `dx = max(dy, 0)`, ignoring the forward value.
   */
  relu?: ReluRule;
  /** Forward tensors to output too (e.g. a layer's activations for Grad-CAM). */
  keep?: readonly string[];
}

/** The combined forward + backward model and the names to use with it. */
export interface GradientGraph {
  /** ONNX bytes of the combined forward+backward model. */
  bytes: Uint8Array;
  /** Name of the extra float input holding the seed dL/d(of), same shape as `of`. */
  seed: string;
  /** Output name of the gradient for each `wrt` tensor, in order. */
  grads: string[];
  /** Output names for `of` itself and each `keep` tensor (same names as in the forward graph). */
  outputs: string[];
}

const MIN_OPSET = 16;
const FLOAT_TYPES = new Set<number>([
  TensorProto_DataType.FLOAT,
  TensorProto_DataType.DOUBLE,
  TensorProto_DataType.FLOAT16,
  TensorProto_DataType.BFLOAT16,
  0,
]);

function nodeLabel(node: NodeProto): string {
  return `"${node.name || node.output[0]}" (${node.opType})`;
}

/**
 * Build one ONNX model computing `spec.of`, the `spec.keep` tensors and the gradients of
 * `spec.of` (weighted by the seed input) with respect to each `spec.wrt` tensor.
 */
export function buildGradientGraph(
  model: Uint8Array | ModelProto,
  spec: GradientSpec,
): GradientGraph {
  const source = model instanceof Uint8Array ? decodeModel(model) : model;
  const graph = source.graph;
  if (!graph) throw new LanternError("Cannot differentiate model: it has no graph");
  const srcOpset = opsetVersion(source);
  const opset = Math.max(srcOpset, MIN_OPSET);
  const relu = spec.relu ?? "standard";
  if (!["standard", "guided", "deconvnet"].includes(relu)) {
    throw new LanternError(
      `Cannot differentiate model: relu rule "${relu}" is not standard, guided or deconvnet`,
    );
  }

  const taken = new Set<string>();
  for (const n of graph.node) {
    taken.add(n.name);
    for (const t of [...n.input, ...n.output]) taken.add(t);
  }
  for (const t of graph.initializer) taken.add(t.name);
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) taken.add(v.name);
  const b = new GraphBuilder(taken);

  // Opset upgrade: rewritten nodes may add constants, which shape inference must see.
  const used = new Set<string>([
    ...graph.node.flatMap((n) => n.input),
    ...graph.output.map((o) => o.name),
  ]);
  const nodes = upgradeNodes(graph.node, {
    from: srcOpset,
    to: opset,
    b,
    info: inferShapes(graph),
    used: (name) => used.has(name),
  });
  const upgraded = {
    ...graph,
    initializer: [...graph.initializer, ...b.initializers],
  } as typeof graph;
  const info = inferShapes(upgraded, nodes);

  // Names the spec refers to must exist.
  const inits = initializerNames(graph);
  const known = new Set<string>([...graph.input.map((i) => i.name), ...inits]);
  for (const n of nodes) for (const o of n.output) if (o) known.add(o);
  const check = (name: string, role: string) => {
    if (!known.has(name)) {
      throw new LanternError(
        `Cannot differentiate model: ${role} tensor "${name}" is not in the graph${
          didYouMean(name, known)
        }`,
      );
    }
  };
  check(spec.of, "'of'");
  for (const w of spec.wrt) check(w, "'wrt'");
  for (const k of spec.keep ?? []) check(k, "'keep'");
  for (const w of spec.wrt) {
    if (!FLOAT_TYPES.has(info.get(w).type)) {
      throw new LanternError(
        `Cannot differentiate with respect to "${w}": it is not a float tensor`,
      );
    }
  }

  // B: tensors `of` depends on. F: tensors that depend on a wrt tensor through differentiable
  // edges (or through ops without a rule, which then fail if they lie on a path).
  const prod = producers({ ...graph, node: nodes } as typeof graph);
  const before = new Set<string>();
  const stack = [spec.of];
  while (stack.length) {
    const t = stack.pop()!;
    if (before.has(t)) continue;
    before.add(t);
    const p = prod.get(t);
    if (p) { for (const i of p.input) if (i) stack.push(i); }
  }
  const after = new Set<string>(spec.wrt);
  for (const n of nodes) {
    const r = n.domain && n.domain !== "ai.onnx" ? undefined : RULES[n.opType];
    const diff = r ? r.diff(n, info) : n.input.map((_, i) => i);
    if (n.input.some((t, i) => t && after.has(t) && diff.includes(i))) {
      for (const o of n.output) if (o && FLOAT_TYPES.has(info.get(o).type)) after.add(o);
    }
  }

  // Backward sweep in reverse topological order.
  const seed = b.fresh(`${spec.of}_seed`);
  const grads = new Map<string, string>();
  const accumulate = (t: string, g: string) => {
    const prev = grads.get(t);
    grads.set(t, prev ? b.op("Add", [prev, g]) : g);
  };
  accumulate(spec.of, seed);
  const shapes = new Map<string, string>();
  const shapeOf = (x: string) => {
    let s = shapes.get(x);
    if (!s) shapes.set(x, s = b.op("Shape", [x]));
    return s;
  };
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    if (!node.output.some((o) => o && before.has(o) && after.has(o))) continue;
    const dy = node.output.map((o) => (o ? grads.get(o) : undefined));
    if (dy.every((g) => g === undefined)) continue;
    const r = node.domain && node.domain !== "ai.onnx" ? undefined : RULES[node.opType];
    if (!r) {
      throw new LanternError(
        `Cannot differentiate node ${nodeLabel(node)}: no backward rule; supported ops are ${
          differentiableOps().join(", ")
        }`,
      );
    }
    const diff = r.diff(node, info);
    const needs = node.input.map((t, i) => !!t && after.has(t) && diff.includes(i));
    node.input.forEach((t, i) => {
      if (t && after.has(t) && !diff.includes(i) && FLOAT_TYPES.has(info.get(t).type)) {
        throw new LanternError(
          `Cannot differentiate node ${
            nodeLabel(node)
          }: no gradient with respect to its input ${i} ("${t}"), which depends on a 'wrt' tensor`,
        );
      }
    });
    if (!needs.some(Boolean)) continue;
    const ctx: RuleContext = { b, node, info, opset, relu, dy, needs, shapeOf };
    let dx: (string | undefined)[];
    try {
      dx = r.backward(ctx);
    } catch (e) {
      if (e instanceof RuleError) {
        throw new LanternError(`Cannot differentiate node ${nodeLabel(node)}: ${e.message}`);
      }
      throw e;
    }
    node.input.forEach((t, i) => {
      if (needs[i] && dx[i]) accumulate(t, dx[i]!);
    });
  }

  // Gradient outputs: rename the producing backward tensor when possible, else an Identity.
  const gradNames: string[] = [];
  const outputOf = new Map<string, string>();
  const rename = new Map<string, string>();
  const backwardOutputs = new Set(b.nodes.flatMap((n) => n.output));
  for (const w of spec.wrt) {
    const existing = outputOf.get(w);
    if (existing) {
      gradNames.push(existing);
      continue;
    }
    const name = b.fresh(`${w}_grad`);
    let g = grads.get(w);
    if (!g) {
      g = b.op("ConstantOfShape", [shapeOf(w)]);
      backwardOutputs.add(g);
    }
    if (backwardOutputs.has(g) && !rename.has(g)) rename.set(g, name);
    else b.node("Identity", [g], { outputs: [name] });
    outputOf.set(w, name);
    gradNames.push(name);
  }
  for (const n of b.nodes) {
    n.input = n.input.map((t) => rename.get(t) ?? t);
    n.output = n.output.map((t) => rename.get(t) ?? t);
  }

  // Keep only what the outputs need.
  const outputs = [...new Set([spec.of, ...(spec.keep ?? [])])];
  const finalNames = [...new Set([...outputs, ...gradNames])];
  const all = [...nodes, ...b.nodes];
  const needed = new Set<string>(finalNames);
  const kept: NodeProto[] = [];
  for (let k = all.length - 1; k >= 0; k--) {
    const n = all[k];
    if (!n.output.some((o) => o && needed.has(o))) continue;
    kept.push(n);
    for (const i of n.input) if (i) needed.add(i);
  }
  kept.reverse();
  const initializers = [...graph.initializer, ...b.initializers].filter((t) => needed.has(t.name));
  /** A value info with the inferred shape of `like` (symbolic dims as named params). */
  const valueInfo = (name: string, like: string) => {
    const facts = info.get(like);
    const dims = facts.dims?.map((d, i) =>
      typeof d === "number" || (typeof d === "string" && !d.startsWith("?")) ? d : `${name}_d${i}`
    );
    const type = facts.type === TensorProto_DataType.INT64
      ? "int64"
      : facts.type === TensorProto_DataType.BOOL
      ? "bool"
      : facts.type === TensorProto_DataType.INT32
      ? "int32"
      : "float";
    return makeValueInfo(name, { dims, type });
  };
  const likeOf = new Map<string, string>(outputs.map((o) => [o, o]));
  spec.wrt.forEach((w, i) => likeOf.set(gradNames[i], w));
  const inputs = [
    ...graph.input.filter((i) => !inits.has(i.name)),
    valueInfo(seed, spec.of),
  ];
  const opsetImport = source.opsetImport
    .filter((o) => o.domain !== "" && o.domain !== "ai.onnx")
    .concat(create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(opset) }));
  const out = create(ModelProtoSchema, {
    irVersion: source.irVersion > 8n ? source.irVersion : 8n,
    producerName: "lantern-autodiff",
    opsetImport,
    graph: create(GraphProtoSchema, {
      name: `${graph.name || "graph"}_grad`,
      node: kept,
      initializer: initializers,
      input: inputs,
      output: finalNames.map((n) => valueInfo(n, likeOf.get(n)!)),
    }),
  });
  return { bytes: encodeModel(out), seed, grads: gradNames, outputs };
}
