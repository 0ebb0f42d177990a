/**
 * `occlusion`: slide a gray patch over the input and record how much the target score drops
 * (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks",
 * https://arxiv.org/abs/1311.2901, section 4.2).
 *
 * Semantics follow Captum's `Occlusion`: a window spanning all channels and `window`×`window`
 * pixels moves with `stride`; each pixel's attribution is the mean, over the windows that cover
 * it, of f_t(x) − f_t(x with the window set to `baseline`). As in Captum there are
 * ceil((H − k)/stride) + 1 window rows (likewise columns), and a last window that overhangs the
 * edge is clipped, so every pixel is covered.
 * Output `[N,C,H,W]` in input space.
 *
 * @module
 */
import { z } from "zod";
import { tensor, valueRange } from "../../kernels/tensor.ts";
import { forwardMany } from "../../pipeline/batching.ts";
import { ParamError } from "../../pipeline/errors.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { resolveTargets, targetParam } from "../../pipeline/targets.ts";

/** Parameters of `occlusion`. */
export const occlusionParams = z.object({
  /** Class to explain per image. */
  target: targetParam,
  /** Side of the square window in pixels; it spans all channels (Captum's `(C,k,k)`). */
  window: z.number().int().positive().default(16),
  /** Step between windows in pixels (default: half the window). */
  stride: z.number().int().positive().optional(),
  /** Value written into the window, in model-input space. */
  baseline: z.number().default(0),
  /** Occluded inputs per forward pass. */
  internal_batch: z.number().int().positive().default(16),
}).strict();

/** Attribution by sliding-window occlusion. */
export const occlusion = defineMethod({
  name: "occlusion",
  description: "Sliding-window occlusion (Zeiler & Fergus 2014), [N,C,H,W]",
  params: occlusionParams,
  async run({ model, batch, logits, progress }, params) {
    const [n, c, h, w] = batch.tensor.dims;
    const k = params.window;
    const stride = params.stride ?? Math.max(1, Math.floor(k / 2));
    if (k > h || k > w) {
      throw new ParamError("window", `window ${k} is larger than the input (${h}×${w})`);
    }
    const targets = resolveTargets(params.target, logits);
    // Captum's count: a last window that overhangs the edge is kept, clipped to the input.
    const rows = Math.ceil((h - k) / stride) + 1;
    const cols = Math.ceil((w - k) / stride) + 1;
    const windows = rows * cols;
    const classes = logits.dims[1];
    const plane = h * w;
    const per = c * plane;
    const out = new Float32Array(n * per);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const x = batch.tensor.data.subarray(i * per, (i + 1) * per);
      const base = logits.data[i * classes + targets[i]];
      const total = new Float64Array(plane);
      const count = new Uint32Array(plane);
      const box = (index: number) => {
        const y0 = Math.floor(index / cols) * stride, x0 = (index % cols) * stride;
        return { y0, x0, y1: Math.min(y0 + k, h), x1: Math.min(x0 + k, w) };
      };
      await forwardMany(model, {
        count: windows,
        inputDims: [c, h, w],
        fill(index, into) {
          into.set(x);
          const { y0, x0, y1, x1 } = box(index);
          for (let ch = 0; ch < c; ch++) {
            for (let y = y0; y < y1; y++) {
              into.fill(params.baseline, ch * plane + y * w + x0, ch * plane + y * w + x1);
            }
          }
        },
        consume(index, scores) {
          const diff = base - scores[targets[i]];
          const { y0, x0, y1, x1 } = box(index);
          for (let y = y0; y < y1; y++) {
            for (let xx = x0; xx < x1; xx++) {
              total[y * w + xx] += diff;
              count[y * w + xx]++;
            }
          }
        },
      }, {
        batchSize: params.internal_batch,
        progress: progress &&
          ((done) => progress(i * windows + done, n * windows, "occlusion")),
      });
      for (let p = 0; p < plane; p++) {
        const v = count[p] ? total[p] / count[p] : 0;
        for (let ch = 0; ch < c; ch++) out[i * per + ch * plane + p] = v;
      }
    }
    return {
      method: "occlusion",
      targets,
      map: tensor(out, [n, c, h, w]),
      range: valueRange(out),
      timings: { forward: performance.now() - t0 },
      backend: model.backend.name,
      space: "input",
      info: { window: k, stride, baseline: params.baseline, windows },
    };
  },
});
