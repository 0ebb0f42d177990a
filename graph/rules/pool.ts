/**
 * Backward rules for pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
 *
 * MaxPool avoids the `Indices` output and ScatterElements (the WebGPU execution provider has
 * neither for this use). Instead every `N·C` plane is unfolded by a Conv whose one-hot kernels
 * copy each window position into its own channel; the input is first padded with −3.4e38 (finite,
 * so 0 · pad stays 0, unlike −∞), so padding never wins. Positions equal to the pooled output are
 * candidates; a CumSum over the window axis keeps only the first, which is the element torch and
 * onnxruntime pick on ties (all-zero windows after a ReLU are common). The upstream gradient is
 * placed there and folded back by ConvTranspose with the same one-hot kernels (col2im, summing
 * overlapping windows), whose pads crop the padding.
 *
 * @module
 */
import { attrInt } from "../builder.ts";
import { type ConvWindow, isStatic, prodDims, windowParams } from "./shapes.ts";
import { needRank, reshapeLike, type Rule, rule, type RuleContext, RuleError } from "./common.ts";
import { transposedWindow } from "./conv.ts";

/** Most negative finite float32: pads MaxPool inputs so padding never is the maximum. */
const PAD_NEG = -3.4028234663852886e38;

/** `Reshape(t, [-1, 1, 0, …])`: one plane per batch item and channel. */
function planes(c: RuleContext, t: string, spatialRank: number): string {
  return c.b.op("Reshape", [t, c.b.ints([-1, 1, ...new Array(spatialRank).fill(0)])]);
}

/** One-hot kernels `[k, 1, ...kernel]`: output channel j copies window position j. */
function oneHotKernels(c: RuleContext, kernel: readonly number[]): string {
  const kk = kernel.reduce((a, b) => a * b, 1);
  const data = new Float32Array(kk * kk);
  for (let j = 0; j < kk; j++) data[j * kk + j] = 1;
  return c.b.constant(data, { dims: [kk, 1, ...kernel] });
}

/** Extra end padding so the last (ceil-mode) window lies inside the padded input. */
function unfoldEndPads(
  c: RuleContext,
  wp: ConvWindow,
  ceil: boolean,
): number[] {
  const xd = c.info.get(c.node.input[0]).dims?.slice(2);
  const yd = c.info.get(c.node.output[0]).dims?.slice(2);
  return wp.kernel.map((k, i) => {
    const h = xd?.[i], ho = yd?.[i];
    if (typeof h !== "number" || typeof ho !== "number") {
      if (ceil) throw new RuleError("ceil_mode needs static spatial dims");
      return wp.pads.end[i];
    }
    const need = (ho - 1) * wp.strides[i] + (k - 1) * wp.dilations[i] + 1 - h - wp.pads.begin[i];
    return Math.max(wp.pads.end[i], need);
  });
}

function requireWindow(c: RuleContext) {
  const wp = windowParams(c.node, c.info);
  if (!wp) throw new RuleError("the kernel shape is unknown");
  if (!wp.pads) throw new RuleError("auto_pad needs static spatial dims of the input");
  return { ...wp, pads: wp.pads };
}

/** Per-output-position divisors of an AveragePool (onnxruntime's CPU semantics). */
function averageDivisors(
  c: RuleContext,
  wp: ReturnType<typeof requireWindow>,
  countIncludePad: boolean,
): number[] | undefined {
  const xd = c.info.get(c.node.input[0]).dims?.slice(2);
  const yd = c.info.get(c.node.output[0]).dims?.slice(2);
  if (!isStatic(xd) || !isStatic(yd)) return undefined;
  // Per axis: the divisor factor of each output index.
  const perAxis = wp.kernel.map((k, i) => {
    const s = wp.strides[i], d = wp.dilations[i], h = xd[i];
    return Array.from({ length: yd[i] }, (_, o) => {
      const start = o * s - wp.pads.begin[i];
      const end = Math.min(start + k * d, h + wp.pads.end[i]);
      if (countIncludePad) return 1 + Math.floor((end - start - 1) / d);
      let n = 0;
      for (let p = start; p < end; p += d) if (p >= 0 && p < h) n++;
      return n;
    });
  });
  const total = yd.reduce((a, b) => a * b, 1);
  const out = new Array<number>(total);
  for (let flat = 0; flat < total; flat++) {
    let rem = flat, div = 1;
    for (let i = yd.length - 1; i >= 0; i--) {
      div *= perAxis[i][rem % yd[i]];
      rem = Math.floor(rem / yd[i]);
    }
    out[flat] = div;
  }
  return out;
}

/** Pooling rules by op type. */
export const POOL_RULES: Record<string, Rule> = {
  MaxPool: rule([0], (c) => {
    const [x] = c.node.input, y = c.node.output[0];
    if (!c.dy[0]) return [undefined];
    const wp = requireWindow(c);
    const n = wp.kernel.length;
    const ceil = (attrInt(c.node, "ceil_mode") ?? 0) === 1;
    const end = unfoldEndPads(c, wp, ceil);
    let xp = x;
    if ([...wp.pads.begin, ...end].some((p) => p !== 0)) {
      const pads = c.b.ints([0, 0, ...wp.pads.begin, 0, 0, ...end]);
      xp = c.b.op("Pad", [xp, pads, c.b.scalar(PAD_NEG)], { mode: "constant" });
    }
    const kernel = oneHotKernels(c, wp.kernel);
    const conv = { strides: wp.strides, dilations: wp.dilations, kernel_shape: wp.kernel };
    const windows = c.b.op("Conv", [planes(c, xp, n), kernel], conv);
    const isMax = c.b.op("Cast", [c.b.op("Equal", [windows, planes(c, y, n)])], { to: 1 });
    const rank = c.b.op("CumSum", [isMax, c.b.constant([1], { type: "int64", dims: [] })]);
    const first = c.b.op("Equal", [c.b.op("Mul", [isMax, rank]), c.b.scalar(1)]);
    const routed = c.b.op("Where", [first, planes(c, c.dy[0], n), c.b.scalar(0)]);
    const folded = transposedWindow(c, { g: routed, w: kernel, x, y, ...wp });
    return [reshapeLike(c, folded, { like: x })];
  }),
  AveragePool: rule([0], (c) => {
    const [x] = c.node.input, y = c.node.output[0];
    const wp = requireWindow(c);
    const n = wp.kernel.length;
    const ceil = (attrInt(c.node, "ceil_mode") ?? 0) === 1;
    const include = (attrInt(c.node, "count_include_pad") ?? 0) === 1;
    const noPads = [...wp.pads.begin, ...wp.pads.end].every((p) => p === 0);
    let g = c.dy[0]!;
    const kk = wp.kernel.reduce((a, b) => a * b, 1);
    const divisors = averageDivisors(c, wp, include);
    if (divisors && divisors.every((d) => d === divisors[0])) {
      g = c.b.op("Mul", [g, c.b.scalar(1 / divisors[0])]);
    } else if (divisors) {
      const yd = c.info.get(y).dims!.slice(2) as number[];
      const inv = c.b.constant(divisors.map((d) => 1 / d), { dims: yd });
      g = c.b.op("Mul", [g, inv]);
    } else if (!ceil && (include || noPads) && wp.dilations.every((d) => d === 1)) {
      g = c.b.op("Mul", [g, c.b.scalar(1 / kk)]);
    } else {
      throw new RuleError("ceil_mode or count_include_pad=0 with pads needs static spatial dims");
    }
    const ones = c.b.constant(new Float32Array(kk).fill(1), { dims: [1, 1, ...wp.kernel] });
    const folded = transposedWindow(c, { g: planes(c, g, n), w: ones, x, y, ...wp });
    return [reshapeLike(c, folded, { like: x })];
  }),
  GlobalAveragePool: rule([0], (c) => {
    const x = c.node.input[0];
    const dims = c.info.get(x).dims;
    const area = dims ? prodDims(dims.slice(2)) : null;
    let g: string;
    if (typeof area === "number") g = c.b.op("Mul", [c.dy[0]!, c.b.scalar(1 / area)]);
    else {
      const rank = needRank(c, x);
      const spatial = c.b.op("Slice", [c.shapeOf(x), c.b.ints([2]), c.b.ints([rank])]);
      const count = c.b.op("Cast", [c.b.op("ReduceProd", [spatial], { keepdims: 0 })], { to: 1 });
      g = c.b.op("Div", [c.dy[0]!, count]);
    }
    return [c.b.op("Expand", [g, c.shapeOf(x)])];
  }),
  GlobalMaxPool: rule([0], (c) => {
    // The first maximum in scan order gets the gradient, like torch's adaptive_max_pool.
    const x = c.node.input[0], y = c.node.output[0];
    const flat = c.b.ints([0, 0, -1]);
    const xf = c.b.op("Reshape", [x, flat]);
    const isMax = c.b.op("Cast", [c.b.op("Equal", [xf, c.b.op("Reshape", [y, flat])])], { to: 1 });
    const rank = c.b.op("CumSum", [isMax, c.b.constant([2], { type: "int64", dims: [] })]);
    const first = c.b.op("Equal", [c.b.op("Mul", [isMax, rank]), c.b.scalar(1)]);
    const g = c.b.op("Reshape", [c.dy[0]!, flat]);
    const routed = c.b.op("Where", [first, g, c.b.scalar(0)]);
    return [reshapeLike(c, routed, { like: x })];
  }),
};
