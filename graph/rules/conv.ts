/**
 * Backward rule for Conv with respect to its data input: a ConvTranspose with the same weights,
 * strides, dilations, pads and group, whose `output_padding` restores the rows and columns a
 * strided conv never reads (when `(H + pads − dilation·(k−1) − 1) % stride ≠ 0`). Stride-1 convs,
 * the common case, become a Conv with the flipped, group-transposed kernel instead, which
 * onnxruntime's CPU kernels run faster (see `strideOneBackward`).
 *
 * @module
 */
import { attrInt } from "../builder.ts";
import { type ConvWindow, isStatic, windowParams } from "./shapes.ts";
import { needRank, type Rule, rule, type RuleContext, RuleError } from "./common.ts";

/**
 * `ConvTranspose(g, w)` that inverts the shape of a window op reading `x` and producing `y`, so
 * that the result has exactly the dims of `x`. Static when the spatial dims are known, otherwise
 * the missing tail rows are padded in the graph.
 */
export function transposedWindow(
  c: RuleContext,
  options: {
    g: string;
    w: string;
    x: string;
    y: string;
    kernel: readonly number[];
    strides: readonly number[];
    dilations: readonly number[];
    pads: { begin: readonly number[]; end: readonly number[] };
    group?: number;
  },
): string {
  const { kernel, strides, dilations, pads } = options;
  const n = kernel.length;
  const xd = c.info.get(options.x).dims?.slice(2);
  const yd = c.info.get(options.y).dims?.slice(2);
  const begin = [...pads.begin];
  const end: number[] = [];
  const outPad: number[] = [];
  let dynamic = false;
  for (let i = 0; i < n; i++) {
    const h = xd?.[i], ho = yd?.[i];
    const eff = (kernel[i] - 1) * dilations[i] + 1;
    if (typeof h === "number" && typeof ho === "number") {
      // Full transposed output before cropping; crop `begin` then whatever exceeds h.
      const total = (ho - 1) * strides[i] + eff;
      const tail = total - begin[i] - h;
      if (tail >= 0) {
        end.push(tail);
        outPad.push(0);
      } else {
        end.push(0);
        outPad.push(-tail);
      }
    } else if (strides[i] === 1) {
      // With stride 1 the transposed output is exactly h + begin + end long.
      end.push(pads.end[i]);
      outPad.push(0);
    } else {
      // Unknown size: keep everything past `begin`; cropped or padded to h below.
      end.push(0);
      outPad.push(0);
      dynamic = true;
    }
  }
  const attrs = {
    strides: [...strides],
    dilations: [...dilations],
    pads: [...begin, ...end],
    group: options.group ?? 1,
    kernel_shape: [...kernel],
    output_padding: outPad.some((p) => p !== 0) ? outPad : undefined,
  };
  const r = c.b.op("ConvTranspose", [options.g, options.w], attrs);
  if (!dynamic) return r;
  // Spatial dims unknown: crop to the input's size, then zero-pad rows no window reached.
  const rank = needRank(c, options.x);
  const axes = Array.from({ length: n }, (_, i) => i + 2);
  const size = c.b.op("Slice", [c.shapeOf(options.x), c.b.ints([2]), c.b.ints([rank])]);
  const cropped = c.b.op("Slice", [r, c.b.ints(axes.map(() => 0)), size, c.b.ints(axes)]);
  // `g` may fold planes of x ([N·C, …]), so only the spatial dims are compared.
  const got = c.b.op("Slice", [c.b.op("Shape", [cropped]), c.b.ints([2]), c.b.ints([rank])]);
  const missing = c.b.op("Sub", [size, got]);
  const padSpec = c.b.op("Concat", [c.b.ints(new Array(rank + 2).fill(0)), missing], { axis: 0 });
  return c.b.op("Pad", [cropped, padSpec]);
}

/** Large enough to mean "past the start" in a reversing Slice, exact as a double. */
const BEFORE_START = -(2 ** 62);

/**
 * The kernel `[M, C/g, k…]` of a conv with `group` groups rearranged to `[C, M/g, k…]`, the
 * kernel of a conv that maps dy's M channels back to x's C channels.
 */
function groupTransposed(c: RuleContext, w: string, wd: number[], group: number): string {
  const [m, cg] = wd;
  const mg = m / group;
  if (mg === 1 && cg === 1) return w;
  // [M, C/g, k…] → [g, M/g, C/g, k…] → [g, C/g, M/g, k…] → [C, M/g, k…]
  const spatial = wd.slice(2);
  const split = c.b.op("Reshape", [w, c.b.ints([group, mg, cg, ...spatial])]);
  const perm = [0, 2, 1, ...spatial.map((_, i) => i + 3)];
  const swapped = c.b.op("Transpose", [split], { perm });
  return c.b.op("Reshape", [swapped, c.b.ints([group * cg, mg, ...spatial])]);
}

/**
 * dx of a stride-1 conv (any group count) as a Conv of dy with the spatially flipped,
 * group-transposed kernel, or `undefined` when that does not apply. onnxruntime's CPU
 * ConvTranspose runs a GEMM with a transposed operand plus a single-threaded col2im per image
 * and group: several times slower than its depthwise/grouped Conv, and up to 2× slower than its
 * dense Conv on the same shapes. The kernel rearrangement only reads initializers, so
 * onnxruntime folds it at load time.
 */
function strideOneBackward(c: RuleContext, wp: ConvWindow, group: number): string | undefined {
  const w = c.node.input[1];
  const wd = c.info.get(w).dims;
  if (wp.strides.some((s) => s !== 1) || !isStatic(wd)) return undefined;
  const n = wp.kernel.length;
  const begin = wp.kernel.map((k, i) => (k - 1) * wp.dilations[i] - wp.pads.begin[i]);
  const end = wp.kernel.map((k, i) => (k - 1) * wp.dilations[i] - wp.pads.end[i]);
  if ([...begin, ...end].some((p) => p < 0)) return undefined;
  const kernel = groupTransposed(c, w, wd, group);
  const axes = Array.from({ length: n }, (_, i) => i + 2);
  const flipped = wp.kernel.every((k) => k === 1) ? kernel : c.b.op("Slice", [
    kernel,
    c.b.ints(axes.map(() => -1)),
    c.b.ints(axes.map(() => BEFORE_START)),
    c.b.ints(axes),
    c.b.ints(axes.map(() => -1)),
  ]);
  return c.b.op("Conv", [c.dy[0]!, flipped], {
    group,
    kernel_shape: wp.kernel,
    dilations: wp.dilations,
    pads: [...begin, ...end],
  });
}

/** Conv rules by op type. */
export const CONV_RULES: Record<string, Rule> = {
  Conv: rule([0], (c) => {
    const [x, w] = c.node.input, y = c.node.output[0];
    const wp = windowParams(c.node, c.info);
    if (!wp) throw new RuleError("the kernel shape is unknown");
    if (!wp.pads) throw new RuleError("auto_pad needs static spatial dims of the input");
    const group = attrInt(c.node, "group") ?? 1;
    const window = { ...wp, pads: wp.pads };
    const fast = strideOneBackward(c, window, group);
    if (fast) return [fast];
    return [transposedWindow(c, { g: c.dy[0]!, w, x, y, ...window, group })];
  }),
};
