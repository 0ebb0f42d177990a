/**
 * Backward rule for Conv with respect to its data input: a ConvTranspose with the same weights,
 * strides, dilations, pads and group, whose `output_padding` restores the rows and columns a
 * strided conv never reads (when `(H + pads − dilation·(k−1) − 1) % stride ≠ 0`).
 *
 * @module
 */
import { attrInt } from "../builder.ts";
import { windowParams } from "./shapes.ts";
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
    } else {
      end.push(pads.end[i]);
      outPad.push(0);
      if (strides[i] > 1) dynamic = true;
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
  // Spatial dims unknown: zero-pad the tail rows the transposed conv could not produce.
  const rank = needRank(c, options.x);
  const missing = c.b.op("Sub", [c.shapeOf(options.x), c.b.op("Shape", [r])]);
  const padSpec = c.b.op("Concat", [c.b.ints(new Array(rank).fill(0)), missing], { axis: 0 });
  return c.b.op("Pad", [r, padSpec]);
}

/** Conv rules by op type. */
export const CONV_RULES: Record<string, Rule> = {
  Conv: rule([0], (c) => {
    const [x, w] = c.node.input, y = c.node.output[0];
    const wp = windowParams(c.node, c.info);
    if (!wp) throw new RuleError("the kernel shape is unknown");
    if (!wp.pads) throw new RuleError("auto_pad needs static spatial dims of the input");
    return [
      transposedWindow(c, {
        g: c.dy[0]!,
        w,
        x,
        y,
        ...wp,
        pads: wp.pads,
        group: attrInt(c.node, "group", 1),
      }),
    ];
  }),
};
