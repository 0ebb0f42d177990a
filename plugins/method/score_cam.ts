/**
 * `score-cam`: class activation maps weighted by how much each channel's activation, used as a
 * mask, keeps the target's confidence (Wang et al. 2020, "Score-CAM: Score-Weighted Visual
 * Explanations for Convolutional Neural Networks", https://arxiv.org/abs/1910.01279, Eq. 3–8 and
 * Algorithm 1):
 *
 *   H_k = s(Up(A_k)),   s(M) = (M − min M) / (max M − min M)
 *   w_k = softmax(f(x ⊙ H_k))_c
 *   L_c = ReLU(Σ_k w_k A_k)
 *
 * Up is bilinear resizing to the input (half-pixel centres, as the authors' `F.interpolate` with
 * `align_corners=False`); a constant channel gives an all-zero mask. Gradient-free: one forward
 * pass per channel and image. Output `[N,1,h,w]` at the layer's resolution like the CAM family.
 *
 * @module
 */
import { z } from "zod";
import { batchItem, gatherBatch, toCpu, valueRange } from "../../kernels/tensor.ts";
import { bilinearPlane } from "../../kernels/upsample.ts";
import { forwardMany } from "../../pipeline/batching.ts";
import { explanation, since } from "../../pipeline/explanation.ts";
import { resolveLayer } from "../../pipeline/layers.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { resolveTargetRows, rowsOfImage, softmaxOf, targetParam } from "../../pipeline/targets.ts";
import { weightedSum } from "./_cam.ts";

/** `into` ← `x` ⊙ s(mask) for each of `channels` planes, s the min–max normalization (Eq. 5). */
function maskInput(
  x: Float32Array,
  into: Float32Array,
  options: { mask: Float32Array; channels: number },
): void {
  const { mask, channels } = options;
  const plane = mask.length;
  const [lo, hi] = valueRange(mask);
  const scale = hi > lo ? 1 / (hi - lo) : 0;
  for (let q = 0; q < channels; q++) {
    const o = q * plane;
    for (let p = 0; p < plane; p++) into[o + p] = x[o + p] * ((mask[p] - lo) * scale);
  }
}

/** Parameters of `score-cam`. */
export const scoreCamParams = z.object({
  target: targetParam,
  /** ONNX tensor name of a 4-D activation (default: the last one feeding the head). */
  layer: z.string().optional(),
  /** Clamp negative evidence to zero. */
  relu: z.boolean().default(true),
  /** Masked inputs per forward pass. */
  internal_batch: z.number().int().positive().default(32),
}).strict();

/** Score-CAM. */
export const scoreCam = defineMethod({
  name: "score-cam",
  description: "Channel masks weighted by target confidence (Wang et al. 2020), [N,1,h,w]",
  params: scoreCamParams,
  async run({ model, batch, logits, progress }, params) {
    const layer = await resolveLayer(model, params.layer, { rank: 4 });
    const rows = resolveTargetRows(params.target, logits);
    const [n, c, h, w] = batch.tensor.dims;
    const t0 = performance.now();
    const acts = await toCpu(
      (await model.run(batch.tensor, { outputs: [layer.name] }))[layer.name],
    );
    const [, k, lh, lw] = acts.dims;
    const weights = new Float32Array(rows.targets.length * k);
    const up = new Float32Array(h * w);
    for (let i = 0; i < n; i++) {
      const mine = rowsOfImage(rows, i);
      if (mine.length === 0) continue;
      const x = batchItem(batch.tensor, i).data;
      const a = batchItem(acts, i).data;
      await forwardMany(model, {
        count: k,
        inputDims: [c, h, w],
        fill(ch, into) {
          bilinearPlane(a.subarray(ch * lh * lw, (ch + 1) * lh * lw), up, {
            from: [lh, lw],
            to: [h, w],
          });
          maskInput(x, into, { mask: up, channels: c });
        },
        consume(ch, scores) {
          const p = softmaxOf(scores);
          for (const r of mine) weights[r * k + ch] = p(rows.targets[r]);
        },
      }, {
        batchSize: params.internal_batch,
        progress: progress && ((done) => progress(i * k + done, n * k, "score-cam")),
      });
    }
    const map = weightedSum(gatherBatch(acts, rows.images), weights, { relu: params.relu });
    return explanation(model, {
      method: "score-cam",
      rows,
      map,
      space: "layer",
      layer: layer.name,
      timings: { forward: since(t0) },
    });
  },
});
