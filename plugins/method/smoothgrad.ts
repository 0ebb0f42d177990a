/**
 * `smoothgrad`: average the input gradient over noisy copies of the input (Smilkov et al. 2017,
 * "SmoothGrad: removing noise by adding noise", https://arxiv.org/abs/1706.03825, Eq. 2):
 *
 *   M̂_c(x) = (1/n) Σ_i M_c(x + N(0, σ²)),   σ = sigma · (max(x) − min(x))
 *
 * Variants as Captum's `NoiseTunnel`: `smoothgrad` (mean), `smoothgrad_sq` (mean of squares) and
 * `vargrad` (variance, Adebayo et al. 2018). Noise is drawn from one seeded generator, row by row,
 * so results are reproducible. Output `[N,C,H,W]`.
 *
 * @module
 */
import { z } from "zod";
import { Random } from "../../kernels/random.ts";
import { gatherBatch, sizeOf, tensor, valueRange } from "../../kernels/tensor.ts";
import { explanation, since } from "../../pipeline/explanation.ts";
import { inputGradientsMany } from "../../pipeline/gradients.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { resolveTargetRows, targetParam } from "../../pipeline/targets.ts";
import { internalBatchParam } from "./_gradient.ts";

/** Parameters of `smoothgrad`. */
export const smoothgradParams = z.object({
  target: targetParam,
  /** Noisy samples per image (n). */
  samples: z.number().int().positive().default(50),
  /** Noise standard deviation as a fraction of the input's value range. */
  sigma: z.number().nonnegative().default(0.15),
  seed: z.number().int().default(0),
  variant: z.enum(["smoothgrad", "smoothgrad_sq", "vargrad"]).default("smoothgrad"),
  /** Take |gradient| before averaging (Captum's Saliency inside NoiseTunnel does). */
  abs: z.boolean().default(false),
  internal_batch: internalBatchParam,
}).strict();

// Kept out of the method's async body, whose loops the engine would not optimize.
function accumulate(
  grad: Float32Array,
  into: { sum: Float64Array; sumSq: Float64Array; abs: boolean },
): void {
  const { sum, sumSq, abs } = into;
  if (abs) {
    for (let p = 0; p < grad.length; p++) {
      const g = Math.abs(grad[p]);
      sum[p] += g;
      sumSq[p] += g * g;
    }
  } else {
    for (let p = 0; p < grad.length; p++) {
      const g = grad[p];
      sum[p] += g;
      sumSq[p] += g * g;
    }
  }
}

function reduce(
  sum: Float64Array,
  sumSq: Float64Array,
  options: { n: number; variant: "smoothgrad" | "smoothgrad_sq" | "vargrad" },
): Float32Array {
  const { n, variant } = options;
  const out = new Float32Array(sum.length);
  for (let i = 0; i < out.length; i++) {
    const mean = sum[i] / n, meanSq = sumSq[i] / n;
    out[i] = variant === "smoothgrad"
      ? mean
      : variant === "smoothgrad_sq"
      ? meanSq
      : meanSq - mean * mean;
  }
  return out;
}

/** SmoothGrad and its squared and variance variants. */
export const smoothgrad = defineMethod({
  name: "smoothgrad",
  description: "Gradient averaged over noisy inputs (Smilkov et al. 2017), [N,C,H,W]",
  params: smoothgradParams,
  async run(input, params) {
    const { model, batch, logits, progress } = input;
    const rows = resolveTargetRows(params.target, logits);
    const x = gatherBatch(batch.tensor, rows.images);
    const inner = x.dims.slice(1);
    const per = sizeOf(inner);
    const n = params.samples;
    const sum = new Float64Array(x.data.length);
    const sumSq = new Float64Array(x.data.length);
    const random = new Random(params.seed);
    const sigmas = rows.targets.map((_, r) => {
      const [lo, hi] = valueRange(x.data.subarray(r * per, (r + 1) * per));
      return params.sigma * (hi - lo);
    });
    const abs = params.abs;
    const t0 = performance.now();
    // Row k is noisy sample k % n of target row ⌊k / n⌋; the noise stream runs in row order.
    await inputGradientsMany(model, {
      count: rows.targets.length * n,
      inputDims: inner,
      classes: logits.dims[1],
      fill(k, into) {
        const r = Math.floor(k / n);
        random.fillNormal(into, sigmas[r], { mean: x.data.subarray(r * per, (r + 1) * per) });
        return rows.targets[r];
      },
      consume(k, grad) {
        const r = Math.floor(k / n);
        accumulate(grad, { sum: sum.subarray(r * per), sumSq: sumSq.subarray(r * per), abs });
      },
    }, { batchSize: params.internal_batch, progress, label: "smoothgrad" });
    const out = reduce(sum, sumSq, { n, variant: params.variant });
    return explanation(model, {
      method: "smoothgrad",
      rows,
      map: tensor(out, x.dims),
      space: "input",
      timings: { gradient: since(t0) },
      info: { samples: n, sigma: params.sigma, noise_std: sigmas, variant: params.variant },
    });
  },
});
