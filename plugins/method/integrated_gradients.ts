/**
 * `integrated-gradients` (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
 * Networks", https://arxiv.org/abs/1703.01365, Eq. 1 and its Riemann approximation Eq. 3):
 *
 *   IG_i(x) = (x_i − x'_i) · ∫₀¹ ∂F(x' + α(x − x'))/∂x_i dα ≈ (x_i − x'_i) · Σ_k w_k ∂F(x' + α_k(x − x'))/∂x_i
 *
 * with Captum's integration rules (default 50-point Gauss–Legendre) and baselines x' of zeros, a
 * seeded uniform draw over the input's range, a Gaussian-blurred input (Sturmfels et al. 2020,
 * https://distill.pub/2020/attribution-baselines/), a constant, or a `.npy` file. Completeness
 * (Σ_i IG_i = F(x) − F(x')) is checked and its gap reported in `info.delta` per row, and relative
 * to |F(x) − F(x')| in `info.delta_relative`. Output `[N,C,H,W]`.
 *
 * @module
 */
import { z } from "zod";
import { gaussianBlur } from "../../kernels/blur.ts";
import { decodeNpy } from "../../kernels/npy.ts";
import { quadrature, RULES } from "../../kernels/quadrature.ts";
import { Random } from "../../kernels/random.ts";
import { gatherBatch, sizeOf, type Tensor, tensor, valueRange } from "../../kernels/tensor.ts";
import { ParamError } from "../../pipeline/errors.ts";
import { explanation, since } from "../../pipeline/explanation.ts";
import { inputGradientsMany } from "../../pipeline/gradients.ts";
import { defineMethod, type MethodInput } from "../../pipeline/plugin.ts";
import { resolveTargetRows, targetParam } from "../../pipeline/targets.ts";
import { internalBatchParam } from "./_gradient.ts";

/** Parameters of `integrated-gradients`. */
export const integratedGradientsParams = z.object({
  target: targetParam,
  steps: z.number().int().positive().default(50),
  rule: z.enum(RULES).default("gausslegendre"),
  /** `zeros`, `uniform`, `blurred`, a number, or a path to a `.npy` `[1|N,C,H,W]`. */
  baseline: z.union([z.number(), z.string().min(1)]).default("zeros"),
  /** Gaussian sigma in pixels for `baseline: blurred` (default 5% of the larger side). */
  blur_sigma: z.number().positive().optional(),
  /** Seed for `baseline: uniform`. */
  seed: z.number().int().default(0),
  internal_batch: internalBatchParam,
}).strict();

type Params = z.infer<typeof integratedGradientsParams>;

/** The baseline x' for each row of `x`. */
async function makeBaseline(
  x: Tensor,
  params: Params,
  input: MethodInput,
  images: number[],
): Promise<Tensor> {
  const [r, c, h, w] = x.dims;
  const b = params.baseline;
  if (typeof b === "number") return tensor(new Float32Array(x.data.length).fill(b), x.dims);
  if (b === "zeros") return tensor(new Float32Array(x.data.length), x.dims);
  if (b === "uniform") {
    const per = c * h * w;
    const random = new Random(params.seed);
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < r; i++) {
      const [lo, hi] = valueRange(x.data.subarray(i * per, (i + 1) * per));
      random.fillUniform(out.subarray(i * per, (i + 1) * per), lo, hi);
    }
    return tensor(out, x.dims);
  }
  if (b === "blurred") return gaussianBlur(x, params.blur_sigma ?? 0.05 * Math.max(h, w));
  if (!input.readFile) {
    throw new ParamError("baseline", `cannot read baseline file "${b}": no file system here`);
  }
  let file: Tensor;
  try {
    file = decodeNpy(await input.readFile(b), b);
  } catch (e) {
    throw new ParamError("baseline", `cannot read baseline "${b}": ${(e as Error).message}`);
  }
  const inner = x.dims.slice(1).join();
  if (
    file.dims.slice(1).join() !== inner ||
    (file.dims[0] !== 1 && file.dims[0] !== input.batch.tensor.dims[0])
  ) {
    throw new ParamError(
      "baseline",
      `baseline "${b}" has shape [${file.dims}], expected [1,${inner}] or [N,${inner}]`,
    );
  }
  return file.dims[0] === 1 ? gatherBatch(file, images.map(() => 0)) : gatherBatch(file, images);
}

/** Integrated gradients. */
export const integratedGradients = defineMethod({
  name: "integrated-gradients",
  description: "Path-integrated gradients from a baseline (Sundararajan et al. 2017), [N,C,H,W]",
  params: integratedGradientsParams,
  async run(input, params) {
    const { model, batch, logits, progress } = input;
    const rows = resolveTargetRows(params.target, logits);
    const x = gatherBatch(batch.tensor, rows.images);
    const baseline = await makeBaseline(x, params, input, rows.images);
    const { alphas, weights } = quadrature(params.rule, params.steps);
    const inner = x.dims.slice(1);
    const per = sizeOf(inner);
    const steps = alphas.length;
    const classes = logits.dims[1];
    const integral = new Float64Array(x.data.length);
    const t0 = performance.now();
    // Row k is path point k % steps of target row ⌊k / steps⌋: x' + α(x − x').
    await inputGradientsMany(model, {
      count: rows.targets.length * steps,
      inputDims: inner,
      classes,
      fill(k, into) {
        const r = Math.floor(k / steps), a = alphas[k % steps];
        for (let p = 0; p < per; p++) {
          const b = baseline.data[r * per + p];
          into[p] = b + a * (x.data[r * per + p] - b);
        }
        return rows.targets[r];
      },
      consume(k, grad) {
        const r = Math.floor(k / steps), wk = weights[k % steps];
        for (let p = 0; p < per; p++) integral[r * per + p] += wk * grad[p];
      },
    }, { batchSize: params.internal_batch, progress, label: "integrated-gradients" });
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) out[i] = (x.data[i] - baseline.data[i]) * integral[i];
    // Completeness: Σ IG = F(x) − F(x').
    const baseScores = (await model.run(baseline))[model.outputName];
    const delta: number[] = [], relative: number[] = [];
    rows.targets.forEach((t, r) => {
      let s = 0;
      for (let p = 0; p < per; p++) s += out[r * per + p];
      const diff = logits.data[rows.images[r] * classes + t] - baseScores.data[r * classes + t];
      delta.push(s - diff);
      relative.push(Math.abs(s - diff) / Math.max(Math.abs(diff), 1e-12));
    });
    return explanation(model, {
      method: "integrated-gradients",
      rows,
      map: tensor(out, x.dims),
      space: "input",
      timings: { gradient: since(t0) },
      info: {
        steps,
        rule: params.rule,
        baseline: params.baseline,
        delta,
        delta_relative: relative,
      },
    });
  },
});
