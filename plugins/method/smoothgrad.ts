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
    const t0 = performance.now();
    // Row k is noisy sample k % n of target row ⌊k / n⌋; the noise stream runs in row order.
    await inputGradientsMany(model, {
      count: rows.targets.length * n,
      inputDims: inner,
      classes: logits.dims[1],
      fill(k, into) {
        const r = Math.floor(k / n);
        random.fillNormal(into, sigmas[r]);
        const src = x.data.subarray(r * per, (r + 1) * per);
        for (let p = 0; p < per; p++) into[p] += src[p];
        return rows.targets[r];
      },
      consume(k, grad) {
        const r = Math.floor(k / n);
        for (let p = 0; p < per; p++) {
          const g = params.abs ? Math.abs(grad[p]) : grad[p];
          sum[r * per + p] += g;
          sumSq[r * per + p] += g * g;
        }
      },
    }, { batchSize: params.internal_batch, progress, label: "smoothgrad" });
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) {
      const mean = sum[i] / n, meanSq = sumSq[i] / n;
      out[i] = params.variant === "smoothgrad"
        ? mean
        : params.variant === "smoothgrad_sq"
        ? meanSq
        : meanSq - mean * mean;
    }
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
