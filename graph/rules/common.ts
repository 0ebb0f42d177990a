/**
 * What every backward rule gets and returns, and the small graph idioms rules share
 * (reducing a broadcast gradient back to an input's shape, opset-aware reductions, shapes).
 *
 * @module
 */
import type { NodeProto } from "../onnx_io.ts";
import { type GraphBuilder, makeTensor } from "../builder.ts";
import { type Dim, isStatic, type ShapeInfo } from "./shapes.ts";

/** How ReLU-like nodes pass gradients back (see `GradientSpec.relu`). */
export type ReluRule = "standard" | "guided" | "deconvnet";

/** Everything a backward rule needs for one node. */
export interface RuleContext {
  /** Emits the backward nodes. */
  readonly b: GraphBuilder;
  /** The forward node. */
  readonly node: NodeProto;
  /** Shape/type/value facts of the forward graph. */
  readonly info: ShapeInfo;
  /** Default-domain opset of the output model. */
  readonly opset: number;
  /** ReLU rule for Relu and ReLU-like Clip nodes. */
  readonly relu: ReluRule;
  /** Gradient of each output, `undefined` where none flows back. */
  readonly dy: readonly (string | undefined)[];
  /** Whether input `i` needs a gradient. */
  readonly needs: readonly boolean[];
  /** `Shape(x)`, emitted once per tensor. */
  shapeOf(x: string): string;
}

/** A backward rule for one op type. */
export interface Rule {
  /** Inputs gradients flow to (others get none; a float one on a gradient path is an error). */
  diff(node: NodeProto, info: ShapeInfo): readonly number[];
  /** Emit the backward nodes; return the gradient of each input (`undefined` for none). */
  backward(ctx: RuleContext): (string | undefined)[];
}

/** Raised by rules for a node they cannot handle; the driver adds the node's name and type. */
export class RuleError extends Error {
  /** Make an error whose message is the reason alone. */
  constructor(message: string) {
    super(message);
    this.name = "RuleError";
  }
}

/** A rule whose gradient flows to the listed inputs. */
export function rule(
  diff: readonly number[],
  backward: (ctx: RuleContext) => (string | undefined)[],
): Rule {
  return { diff: () => diff, backward };
}

/** Normalize a possibly negative axis. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Rank of tensor `name` or a rule error naming what is missing. */
export function needRank(ctx: RuleContext, name: string): number {
  const r = ctx.info.rank(name);
  if (r === undefined) throw new RuleError(`the rank of "${name}" is unknown`);
  return r;
}

/** `ReduceSum(x, axes)` (axes as an input, opset ≥ 13). */
export function reduceSum(
  ctx: RuleContext,
  x: string,
  options: { axes: readonly number[]; keepdims: boolean },
): string {
  if (options.axes.length === 0) return x;
  const keepdims = options.keepdims ? 1 : 0;
  return ctx.b.op("ReduceSum", [x, ctx.b.ints(options.axes)], { keepdims });
}

/** `ReduceMean`/`ReduceMax` with axes as attribute (opset < 18) or input (≥ 18). */
export function reduceOp(
  ctx: RuleContext,
  x: string,
  options: { op: "ReduceMean" | "ReduceMax"; axes: readonly number[]; keepdims: boolean },
): string {
  const keepdims = options.keepdims ? 1 : 0;
  if (ctx.opset >= 18) return ctx.b.op(options.op, [x, ctx.b.ints(options.axes)], { keepdims });
  return ctx.b.op(options.op, [x], { axes: options.axes, keepdims });
}

/** `Unsqueeze(x, axes)` (axes input, opset ≥ 13). */
export function unsqueeze(
  ctx: RuleContext,
  x: string,
  options: { axes: readonly number[] },
): string {
  if (options.axes.length === 0) return x;
  return ctx.b.op("Unsqueeze", [x, ctx.b.ints(options.axes)]);
}

/** `Squeeze(x, axes)` (axes input, opset ≥ 13). */
export function squeeze(
  ctx: RuleContext,
  x: string,
  options: { axes: readonly number[] },
): string {
  if (options.axes.length === 0) return x;
  return ctx.b.op("Squeeze", [x, ctx.b.ints(options.axes)]);
}

/** `Reshape(x)` to the shape of `like`: a constant when static, else `Shape(like)`. */
export function reshapeLike(ctx: RuleContext, x: string, options: { like: string }): string {
  const like = options.like;
  const dims = ctx.info.get(like).dims;
  const shape = isStatic(dims) ? ctx.b.ints(dims) : ctx.shapeOf(like);
  return ctx.b.op("Reshape", [x, shape]);
}

/** A float zero tensor shaped like `like`. */
export function zerosLike(ctx: RuleContext, like: string): string {
  return ctx.b.op("ConstantOfShape", [ctx.shapeOf(like)], {
    value: makeTensor("value", [0], { dims: [1] }),
  });
}

/**
 * Reduce `g`, a gradient shaped like the broadcast result `outDims`, to the shape of input
 * `target` by summing over the axes that broadcasting expanded. Static when the dims of
 * `target` tell which axes were broadcast; otherwise the axes are found in the graph.
 */
export function sumTo(
  ctx: RuleContext,
  g: string,
  options: { target: string; outDims: readonly Dim[] | undefined },
): string {
  const { target, outDims } = options;
  const t = ctx.info.get(target).dims;
  if (t && outDims && t.length <= outDims.length) {
    const lead = outDims.length - t.length;
    const axes: number[] = [];
    let known = true;
    for (let i = 0; i < lead; i++) axes.push(i);
    t.forEach((d, i) => {
      const o = outDims[lead + i];
      if (d === 1) {
        if (o !== 1) axes.push(lead + i);
      } else if (typeof d === "number" || (d !== null && d === o)) {
        // Not broadcast: equal to the output dim.
      } else known = false;
    });
    if (known) {
      if (axes.length === 0) return g;
      const r = reduceSum(ctx, g, { axes, keepdims: true });
      return squeeze(ctx, r, { axes: axes.filter((a) => a < lead) });
    }
  }
  const rt = ctx.info.rank(target);
  const rg = outDims?.length;
  if (rt === undefined || rg === undefined) {
    throw new RuleError(`the rank of "${target}" or of its broadcast result is unknown`);
  }
  let r = g;
  if (rg > rt) {
    r = reduceSum(ctx, r, { axes: Array.from({ length: rg - rt }, (_, i) => i), keepdims: false });
  }
  const mask = ctx.b.op("Equal", [
    ctx.shapeOf(target),
    ctx.b.constant([1], { type: "int64", dims: [] }),
  ]);
  const axes = ctx.b.op("Reshape", [ctx.b.op("NonZero", [mask]), ctx.b.ints([-1])]);
  return ctx.b.op("ReduceSum", [r, axes], { keepdims: 1, noop_with_empty_axes: 1 });
}

/** Dims of a forward output, for broadcasting rules. */
export function outDims(ctx: RuleContext, i = 0): Dim[] | undefined {
  return ctx.info.get(ctx.node.output[i]).dims;
}
