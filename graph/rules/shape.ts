/**
 * Backward rules for data-movement ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
 * Concat, Split, Slice (positive steps), Pad (constant mode), Gather (constant indices).
 *
 * @module
 */
import { attrInt, attrInts, attrString } from "../builder.ts";
import { constValue, sliceRange } from "./shapes.ts";
import {
  needRank,
  normAxis,
  reshapeLike,
  type Rule,
  rule,
  type RuleContext,
  RuleError,
  unsqueeze,
  zerosLike,
} from "./common.ts";

/** Large enough to mean "to the end" in Slice ends, exact as a double. */
const TO_END = 2 ** 62;

const reshapeBack = rule([0], (c) => [reshapeLike(c, c.dy[0]!, { like: c.node.input[0] })]);

/** `Pad(t, pads)` with zeros, skipped when every pad is 0. */
function zeroPad(c: RuleContext, t: string, pads: readonly number[]): string {
  if (pads.every((p) => p === 0)) return t;
  return c.b.op("Pad", [t, c.b.ints(pads)], { mode: "constant" });
}

/** Shape-changing rules by op type. */
export const SHAPE_RULES: Record<string, Rule> = {
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: rule([0], (c) => {
    const rank = needRank(c, c.node.input[0]);
    const perm = attrInts(c.node, "perm") ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    return [c.b.op("Transpose", [c.dy[0]!], { perm: inverse })];
  }),
  Concat: {
    diff: (node) => node.input.map((_, i) => i),
    backward(c) {
      const inputs = c.node.input;
      const rank = needRank(c, inputs[0]);
      const axis = normAxis(attrInt(c.node, "axis") ?? 0, rank);
      const sizes = inputs.map((x) => c.info.get(x).dims?.[axis]);
      const g = c.dy[0]!;
      if (sizes.every((s) => typeof s === "number")) {
        if (inputs.length === 1) return [g];
        const parts = c.b.node("Split", [g, c.b.ints(sizes as number[])], {
          attrs: { axis },
          outputs: inputs.length,
          name: "split",
        });
        return parts.map((p, i) => (c.needs[i] ? p : undefined));
      }
      // Sizes along the axis unknown: slice with offsets computed from the input shapes.
      let offset = c.b.ints([0]);
      return inputs.map((x, i) => {
        const size = c.b.op("Slice", [c.shapeOf(x), c.b.ints([axis]), c.b.ints([axis + 1])]);
        const end = c.b.op("Add", [offset, size]);
        const out = c.needs[i] ? c.b.op("Slice", [g, offset, end, c.b.ints([axis])]) : undefined;
        offset = end;
        return out;
      });
    },
  },
  Split: rule([0], (c) => {
    const x = c.node.input[0];
    const axis = normAxis(attrInt(c.node, "axis") ?? 0, needRank(c, x));
    const parts = c.node.output.map((y, i) => c.dy[i] ?? zerosLike(c, y));
    return [parts.length === 1 ? parts[0] : c.b.op("Concat", parts, { axis })];
  }),
  Slice: rule([0], (c) => {
    const x = c.node.input[0];
    const dims = c.info.get(x).dims;
    const rank = needRank(c, x);
    const starts = constValue(c.info, c.node.input[1]);
    const ends = constValue(c.info, c.node.input[2]);
    if (!starts || !ends) throw new RuleError("starts/ends are not constants");
    const axes = (c.node.input[3] ? constValue(c.info, c.node.input[3]) : starts.map((_, i) => i))
      ?.map((a) => normAxis(a, rank));
    const steps = c.node.input[4] ? constValue(c.info, c.node.input[4]) : starts.map(() => 1);
    if (!axes || !steps) throw new RuleError("axes/steps are not constants");
    const begin = new Array<number>(rank).fill(0), end = new Array<number>(rank).fill(0);
    let g = c.dy[0]!;
    axes.forEach((a, i) => {
      const d = dims?.[a];
      if (typeof d !== "number") throw new RuleError(`axis ${a} of "${x}" has no static size`);
      const step = steps[i];
      if (step <= 0) throw new RuleError("only positive steps are supported");
      const [s, e] = sliceRange(d, { start: starts[i], end: ends[i], step: step });
      const m = Math.max(0, Math.ceil((e - s) / step));
      if (m === 0) throw new RuleError(`the slice along axis ${a} is empty`);
      let span = m;
      if (step > 1) {
        // Spread the m values `step` apart: [m] → [m, 1] → pad to [m, step] → [m·step].
        const wide = zeroPad(
          c,
          unsqueeze(c, g, { axes: [a + 1] }),
          padAt(rank + 1, a + 1, 0, step - 1),
        );
        const scale = new Array<number>(rank).fill(1);
        scale[a] = step;
        const shape = c.b.op("Mul", [c.b.op("Shape", [g]), c.b.ints(scale)]);
        g = c.b.op("Reshape", [wide, shape]);
        span = (m - 1) * step + 1;
        g = c.b.op("Slice", [g, c.b.ints([0]), c.b.ints([span]), c.b.ints([a])]);
      }
      begin[a] = s;
      end[a] = d - s - span;
    });
    return [zeroPad(c, g, [...begin, ...end])];
  }),
  Pad: rule([0], (c) => {
    const x = c.node.input[0];
    const mode = attrString(c.node, "mode") ?? "constant";
    if (mode !== "constant") throw new RuleError(`mode "${mode}" is not supported`);
    const rank = needRank(c, x);
    const pads = constValue(c.info, c.node.input[1]) ?? attrInts(c.node, "pads");
    if (!pads) throw new RuleError("pads are not constants");
    const axes = (c.node.input[3] ? constValue(c.info, c.node.input[3]) : undefined)?.map((a) =>
      normAxis(a, rank)
    ) ?? Array.from({ length: rank }, (_, i) =>
      i);
    const k = axes.length;
    const starts: number[] = [], stops: number[] = [], sliceAxes: number[] = [];
    const grow = new Array<number>(2 * rank).fill(0);
    axes.forEach((a, i) => {
      const pb = pads[i], pe = pads[i + k];
      if (pb > 0 || pe > 0) {
        sliceAxes.push(a);
        starts.push(Math.max(pb, 0));
        stops.push(pe > 0 ? -pe : TO_END);
      }
      // Negative pads cropped the input; the gradient of the cropped part is zero.
      grow[a] = Math.max(-pb, 0);
      grow[a + rank] = Math.max(-pe, 0);
    });
    let g = c.dy[0]!;
    if (sliceAxes.length) {
      g = c.b.op("Slice", [g, c.b.ints(starts), c.b.ints(stops), c.b.ints(sliceAxes)]);
    }
    return [zeroPad(c, g, grow)];
  }),
  Gather: rule([0], (c) => {
    const [x] = c.node.input;
    const rank = needRank(c, x);
    const axis = normAxis(attrInt(c.node, "axis") ?? 0, rank);
    const d = c.info.get(x).dims?.[axis];
    const idxInfo = c.info.get(c.node.input[1]);
    const idx = constValue(c.info, c.node.input[1]);
    if (!idx || !idxInfo.dims) throw new RuleError("the indices are not constants");
    if (typeof d !== "number") throw new RuleError(`axis ${axis} of "${x}" has no static size`);
    const norm = idx.map((i) => (i < 0 ? i + d : i));
    const g = c.dy[0]!;
    if (idxInfo.dims.length === 0) {
      const i = norm[0];
      return [zeroPad(c, unsqueeze(c, g, { axes: [axis] }), padAt(rank, axis, i, d - i - 1))];
    }
    if (idxInfo.dims.length !== 1) throw new RuleError("only 0-D and 1-D indices are supported");
    if (norm.every((v, k) => v === norm[0] + k)) {
      return [zeroPad(c, g, padAt(rank, axis, norm[0], d - norm[0] - norm.length))];
    }
    // Scatter-add as a product with a one-hot [L, d] matrix along the gathered axis.
    const onehot = new Float32Array(norm.length * d);
    norm.forEach((v, k) => (onehot[k * d + v] = 1));
    const m = c.b.constant(onehot, { dims: [norm.length, d] });
    if (axis === rank - 1) return [c.b.op("MatMul", [g, m])];
    const perm = Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis);
    perm.push(axis);
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    const moved = c.b.op("MatMul", [c.b.op("Transpose", [g], { perm }), m]);
    return [c.b.op("Transpose", [moved], { perm: inverse })];
  }),
};

/** Pads of a rank-`rank` tensor: `before`/`after` on `axis`, 0 elsewhere. */
function padAt(rank: number, axis: number, before: number, after: number): number[] {
  const pads = new Array<number>(2 * rank).fill(0);
  pads[axis] = before;
  pads[axis + rank] = after;
  return pads;
}
