/**
 * The CAM family's shared pipeline (after pytorch-grad-cam's `BaseCAM`): a variant only defines
 * per-channel weights; this module forms Σ_k w_k·A_k, applies the optional ReLU and packs the
 * `[R,1,h,w]` result. Helpers for (image, target) rows live here too.
 *
 * @module
 */
import { z } from "zod";
import { type Tensor, tensor } from "../../kernels/tensor.ts";
import { explanation, since } from "../../pipeline/explanation.ts";
import { resolveLayer } from "../../pipeline/layers.ts";
import { defineMethod, type MethodPlugin } from "../../pipeline/plugin.ts";
import { type Target, targetParam } from "../../pipeline/targets.ts";
import { internalBatchParam, targetLayerGradients } from "./_gradient.ts";

/** Σ_k weights[r][k] · acts[r,k] for each row r, `[R,1,h,w]`; ReLU when `relu` is set. */
export function weightedSum(
  acts: Tensor,
  weights: Float32Array,
  options: { relu: boolean },
): Tensor {
  const [r, k, h, w] = acts.dims;
  const hw = h * w;
  const out = new Float32Array(r * hw);
  for (let i = 0; i < r; i++) {
    const map = out.subarray(i * hw, (i + 1) * hw);
    for (let ch = 0; ch < k; ch++) {
      const wk = weights[i * k + ch];
      if (wk === 0) continue;
      const f = acts.data.subarray((i * k + ch) * hw, (i * k + ch + 1) * hw);
      for (let p = 0; p < hw; p++) map[p] += wk * f[p];
    }
    if (options.relu) { for (let p = 0; p < hw; p++) if (map[p] < 0) map[p] = 0; }
  }
  return tensor(out, [r, 1, h, w]);
}

/** Spatial mean of each channel of `t` `[R,K,h,w]` → `[R·K]`. */
export function spatialMean(t: Tensor): Float32Array {
  const [r, k, h, w] = t.dims;
  const hw = h * w;
  const out = new Float32Array(r * k);
  for (let i = 0; i < r * k; i++) {
    let s = 0;
    for (let p = 0; p < hw; p++) s += t.data[i * hw + p];
    out[i] = s / hw;
  }
  return out;
}

/** Parameters shared by the gradient-weighted CAM variants. */
export const camVariantParams: z.ZodObject<{
  target: typeof targetParam;
  layer: z.ZodOptional<z.ZodString>;
  relu: z.ZodDefault<z.ZodBoolean>;
  internal_batch: typeof internalBatchParam;
}> = z.object({
  target: targetParam,
  /** ONNX tensor name of a 4-D activation (default: the last one feeding the head). */
  layer: z.string().optional(),
  /** Clamp negative evidence to zero. */
  relu: z.boolean().default(true),
  internal_batch: internalBatchParam,
}).strict();

/** Per-channel weights `[R·K]` of a CAM variant from activations and gradients `[R,K,h,w]`. */
export type CamWeights = (acts: Tensor, grads: Tensor) => Float32Array;

/**
 * A gradient-weighted CAM method: gradients of each row's target at `layer`, then
 * `weights(acts, grads)`, then Σ_k w_k·A_k with optional ReLU. Output `[N,1,h,w]`.
 */
export function defineCamMethod(
  def: { name: string; description: string; weights: CamWeights },
): MethodPlugin<{ target: Target; layer?: string; relu: boolean; internal_batch: number }> {
  return defineMethod({
    name: def.name,
    description: def.description,
    params: camVariantParams,
    async run(input, params) {
      const layer = await resolveLayer(input.model, params.layer, { rank: 4 });
      const t0 = performance.now();
      const { rows, acts, grad } = await targetLayerGradients(input, {
        target: params.target,
        layer: layer.name,
        batchSize: params.internal_batch,
      });
      const map = weightedSum(acts, def.weights(acts, grad), { relu: params.relu });
      return explanation(input.model, {
        method: def.name,
        rows,
        map,
        space: "layer",
        layer: layer.name,
        timings: { gradient: since(t0) },
      });
    },
  });
}
