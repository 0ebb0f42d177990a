/**
 * Backward rules for Gemm (transA/transB, alpha/beta, broadcast C) and MatMul (2-D, batched,
 * broadcast batch dims, 1-D operands). 2-D products use Gemm's transpose flags instead of
 * materializing transposed weights.
 *
 * @module
 */
import { attrFloat, attrInt } from "../builder.ts";
import { broadcastShapes, type Dim } from "./shapes.ts";
import {
  needRank,
  outDims,
  reshapeLike,
  type Rule,
  rule,
  type RuleContext,
  sumTo,
  unsqueeze,
} from "./common.ts";

/** Swap the last two axes of a tensor of rank `rank`. */
function swapLast(c: RuleContext, t: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return c.b.op("Transpose", [t], { perm });
}

/** MatMul and Gemm rules by op type. */
export const MATMUL_RULES: Record<string, Rule> = {
  Gemm: rule([0, 1, 2], (c) => {
    const [a, b, cc] = c.node.input, g = c.dy[0]!;
    const ta = attrInt(c.node, "transA") ?? 0, tb = attrInt(c.node, "transB") ?? 0;
    const alpha = attrFloat(c.node, "alpha") ?? 1, beta = attrFloat(c.node, "beta") ?? 1;
    const gemm = (x: string, y: string, transA: number, transB: number) =>
      c.b.op("Gemm", [x, y], { transA, transB, alpha: alpha === 1 ? undefined : { f: alpha } });
    // Y = alpha·op(A)·op(B) + beta·C
    const da = !c.needs[0] ? undefined : ta ? gemm(b, g, tb, 1) : gemm(g, b, 0, 1 - tb);
    const db = !c.needs[1] ? undefined : tb ? gemm(g, a, 1, ta) : gemm(a, g, 1 - ta, 0);
    let dc: string | undefined;
    if (c.needs[2]) {
      const scaled = beta === 1 ? g : c.b.op("Mul", [g, c.b.scalar(beta)]);
      dc = sumTo(c, scaled, { target: cc, outDims: outDims(c) });
    }
    return [da, db, dc];
  }),
  MatMul: rule([0, 1], (c) => {
    const [a, b] = c.node.input;
    let g = c.dy[0]!;
    const ra = needRank(c, a), rb = needRank(c, b);
    if (ra === 2 && rb === 2) {
      return [
        c.needs[0] ? c.b.op("Gemm", [g, b], { transB: 1 }) : undefined,
        c.needs[1] ? c.b.op("Gemm", [a, g], { transA: 1 }) : undefined,
      ];
    }
    // Promote 1-D operands to matrices as MatMul does, then undo it on the gradients.
    let a2 = a, b2 = b;
    if (ra === 1) {
      a2 = unsqueeze(c, a, { axes: [0] });
      g = unsqueeze(c, g, { axes: [-2] });
    }
    if (rb === 1) {
      b2 = unsqueeze(c, b, { axes: [1] });
      g = unsqueeze(c, g, { axes: [-1] });
    }
    const ad = c.info.get(a).dims, bd = c.info.get(b).dims;
    const am: Dim[] | undefined = ad && (ra === 1 ? [1, ad[0]] : ad);
    const bm: Dim[] | undefined = bd && (rb === 1 ? [bd[0], 1] : bd);
    const batch = am && bm ? broadcastShapes([am.slice(0, -2), bm.slice(0, -2)]) : undefined;
    const r = Math.max(am?.length ?? ra, bm?.length ?? rb);
    let da: string | undefined, db: string | undefined;
    if (c.needs[0]) {
      const full = c.b.op("MatMul", [g, swapLast(c, b2, Math.max(rb, 2))]);
      const dims = batch && am ? [...batch, ...am.slice(-2)] : undefined;
      da = ra === 1
        ? reshapeLike(c, collapse(c, full, r), { like: a })
        : sumTo(c, full, { target: a, outDims: dims });
    }
    if (c.needs[1]) {
      const full = c.b.op("MatMul", [swapLast(c, a2, Math.max(ra, 2)), g]);
      const dims = batch && bm ? [...batch, ...bm.slice(-2)] : undefined;
      db = rb === 1
        ? reshapeLike(c, collapse(c, full, r), { like: b })
        : sumTo(c, full, { target: b, outDims: dims });
    }
    return [da, db];
  }),
};

/** Sum a batched gradient of a promoted 1-D operand over every batch axis. */
function collapse(c: RuleContext, t: string, rank: number): string {
  if (rank <= 2) return t;
  const axes = Array.from({ length: rank - 2 }, (_, i) => i);
  return c.b.op("ReduceSum", [t, c.b.ints(axes)], { keepdims: 0 });
}
