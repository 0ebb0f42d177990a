/**
 * `rise`: Randomized Input Sampling for Explanation (Petsiuk et al. 2018, "RISE: Randomized Input
 * Sampling for Explanation of Black-box Models", https://arxiv.org/abs/1806.07421, Eq. 6):
 *
 *   S_c(λ) = 1 / (N·p) · Σ_i f_c(x ⊙ M_i) · M_i(λ)
 *
 * Masks as in the authors' code (`generate_masks`): a `grid`×`grid` binary grid with cells on
 * with probability `p`, upsampled bilinearly (scikit-image `resize`, order 1, mode `reflect`) to
 * (grid + 1)·cell with cell = ceil(H/grid), then cropped at a random shift in [0, cell). Masked
 * pixels become 0 in model-input space, as `masks * x` does there. f_c is the softmax probability
 * (the authors wrap the model in a softmax) or the raw score. Masks are drawn from one seeded
 * generator and made on demand, so 4000 masks need no memory beyond one batch. Output `[N,C,H,W]`.
 *
 * @module
 */
import { z } from "zod";
import { Random } from "../../kernels/random.ts";
import { batchItem, tensor } from "../../kernels/tensor.ts";
import { bilinearSeparable, type Taps } from "../../kernels/upsample.ts";
import { forwardMany } from "../../pipeline/batching.ts";
import { explanation, since } from "../../pipeline/explanation.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import {
  outputParam,
  resolveTargetRows,
  rowsOfImage,
  scoreOf,
  targetParam,
} from "../../pipeline/targets.ts";

/** Parameters of `rise`. */
export const riseParams = z.object({
  target: targetParam,
  /** Number of random masks N. */
  masks: z.number().int().positive().default(4000),
  /** Cells per side of the coarse grid. */
  grid: z.number().int().min(2).default(7),
  /** Probability that a cell is kept. */
  p: z.number().gt(0).max(1).default(0.5),
  /** Explain the softmax probability (as the authors do) or the raw score. */
  output: outputParam,
  seed: z.number().int().default(0),
  /** Masked inputs per forward pass. */
  internal_batch: z.number().int().positive().default(32),
}).strict();

/** Draws of one mask: its grid and its shift. */
export interface MaskDraw {
  /** `grid·grid` cells, 1 kept, 0 dropped. */
  readonly cells: Uint8Array;
  /** Shift along height and width. */
  readonly shift: readonly [number, number];
}

/** Draw the grids and shifts of `count` masks for an `h`×`w` input. */
export function drawMasks(
  random: Random,
  options: { count: number; grid: number; p: number; height: number; width: number },
): MaskDraw[] {
  const { grid, p } = options;
  const cellH = Math.ceil(options.height / grid), cellW = Math.ceil(options.width / grid);
  return Array.from({ length: options.count }, () => {
    const cells = new Uint8Array(grid * grid);
    for (let k = 0; k < cells.length; k++) cells[k] = random.uniform() < p ? 1 : 0;
    const shift = [Math.floor(random.uniform() * cellH), Math.floor(random.uniform() * cellW)];
    return { cells, shift: shift as [number, number] };
  });
}

// scikit-image `resize(order=1, mode="reflect")` taps: half-pixel centres, and indices outside
// the grid mirrored about the edge pixels (ndimage's "mirror").
function taps(grid: number, up: number, start: number, length: number): Taps {
  const lo = new Int32Array(length), hi = new Int32Array(length), frac = new Float64Array(length);
  const mirror = (i: number) => {
    if (grid === 1) return 0;
    const period = 2 * (grid - 1);
    let m = ((i % period) + period) % period;
    if (m >= grid) m = period - m;
    return m;
  };
  for (let o = 0; o < length; o++) {
    const src = (start + o + 0.5) * (grid / up) - 0.5;
    const f = Math.floor(src);
    lo[o] = mirror(f);
    hi[o] = mirror(f + 1);
    frac[o] = src - f;
  }
  return { lo, hi, frac };
}

/** The `h`×`w` mask of a draw, values in [0, 1]. */
export function renderMask(
  draw: MaskDraw,
  options: { grid: number; height: number; width: number },
): Float32Array {
  const { grid, height: h, width: w } = options;
  const cellH = Math.ceil(h / grid), cellW = Math.ceil(w / grid);
  const ys = taps(grid, (grid + 1) * cellH, draw.shift[0], h);
  const xs = taps(grid, (grid + 1) * cellW, draw.shift[1], w);
  const out = new Float32Array(h * w);
  bilinearSeparable(draw.cells, out, { ys, xs, width: grid });
  return out;
}

/** RISE saliency from random masks. */
export const rise = defineMethod({
  name: "rise",
  description: "Randomized input sampling (Petsiuk et al. 2018), [N,C,H,W]",
  params: riseParams,
  async run({ model, batch, logits, progress }, params) {
    const rows = resolveTargetRows(params.target, logits);
    const [n, c, h, w] = batch.tensor.dims;
    const plane = h * w, per = c * plane;
    const N = params.masks;
    const shape = { grid: params.grid, height: h, width: w };
    // One mask set for every image, as the authors' explainer holds.
    const draws = drawMasks(new Random(params.seed), { ...shape, count: N, p: params.p });
    const out = new Float32Array(rows.targets.length * per);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const mine = rowsOfImage(rows, i);
      if (mine.length === 0) continue;
      const x = batchItem(batch.tensor, i).data;
      const sal = mine.map(() => new Float64Array(plane));
      const pending = new Map<number, Float32Array>();
      await forwardMany(model, {
        count: N,
        inputDims: [c, h, w],
        fill(k, into) {
          const m = renderMask(draws[k], shape);
          pending.set(k, m);
          for (let ch = 0; ch < c; ch++) {
            for (let p = 0; p < plane; p++) into[ch * plane + p] = x[ch * plane + p] * m[p];
          }
        },
        consume(k, scores) {
          const m = pending.get(k)!;
          pending.delete(k);
          const score = scoreOf(scores, params.output);
          mine.forEach((r, j) => {
            const f = score(rows.targets[r]);
            const acc = sal[j];
            for (let p = 0; p < plane; p++) acc[p] += f * m[p];
          });
        },
      }, {
        batchSize: params.internal_batch,
        progress: progress && ((done) => progress(i * N + done, n * N, "rise")),
      });
      mine.forEach((r, j) => {
        for (let p = 0; p < plane; p++) {
          const v = sal[j][p] / (N * params.p);
          for (let ch = 0; ch < c; ch++) out[r * per + ch * plane + p] = v;
        }
      });
    }
    return explanation(model, {
      method: "rise",
      rows,
      map: tensor(out, [rows.targets.length, c, h, w]),
      space: "input",
      timings: { forward: since(t0) },
      info: { masks: N, grid: params.grid, p: params.p },
    });
  },
});
