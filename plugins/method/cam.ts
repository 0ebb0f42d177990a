/**
 * `cam`: Class Activation Mapping (Zhou et al. 2016, "Learning Deep Features for Discriminative
 * Localization", https://arxiv.org/abs/1512.04150, Eq. 2):
 *
 *   M_c(x, y) = Σ_k w_k^c · f_k(x, y)
 *
 * where f_k is the last convolutional feature map, globally average pooled into the linear layer
 * whose weights are w^c. The head is detected in the graph; models without a
 * GlobalAveragePool → Gemm/MatMul head are refused with a pointer to Grad-CAM. Output `[N,1,h,w]`
 * at the feature map's resolution, ReLU applied unless `relu: false` (the paper shows raw maps;
 * ReLU matches common practice and Grad-CAM's display). The bias is omitted, as in the paper.
 *
 * @module
 */
import { z } from "zod";
import { findHead } from "../../graph/head.ts";
import { gatherBatch, valueRange } from "../../kernels/tensor.ts";
import { LanternError, ParamError } from "../../pipeline/errors.ts";
import { modelProto } from "../../pipeline/layers.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { isOnePerImage, resolveTargetRows, targetParam } from "../../pipeline/targets.ts";
import { weightedSum } from "./_cam.ts";

/** Parameters of `cam`. */
export const camParams = z.object({
  /** Class to explain per image (default top1). */
  target: targetParam,
  /** Must name the detected feature map if given (CAM has no choice of layer). */
  layer: z.string().optional(),
  /** Clamp negative evidence to zero. */
  relu: z.boolean().default(true),
}).strict();

/** Class activation maps from the classifier's own weights. */
export const cam = defineMethod({
  name: "cam",
  description: "Class Activation Mapping (Zhou et al. 2016), [N,1,h,w]",
  params: camParams,
  async run({ model, batch, logits }, params) {
    const proto = modelProto(model);
    const found = findHead(proto, model.outputName);
    if (!found.ok) {
      throw new LanternError(
        `Cannot compute CAM for model "${model.name}": ${found.reason} — use method "gradcam", which works on any layer`,
      );
    }
    const head = found.head;
    if (params.layer && params.layer !== head.layer) {
      throw new ParamError(
        "layer",
        `CAM is defined only at the pooled feature map '${head.layer}', not '${params.layer}' — use gradcam for other layers`,
      );
    }
    const rows = resolveTargetRows(params.target, logits);
    const t0 = performance.now();
    const acts = gatherBatch(
      (await model.run(batch.tensor, { outputs: [head.layer] }))[head.layer],
      rows.images,
    );
    const t1 = performance.now();
    const k = acts.dims[1];
    // A head that pools straight into the scores has identity weights: the map is channel c.
    const identity = head.channels === 0;
    if (!identity && k !== head.channels) {
      throw new LanternError(
        `Cannot compute CAM: feature map has ${k} channels but the head expects ${head.channels}`,
      );
    }
    const weights = new Float32Array(rows.targets.length * k);
    rows.targets.forEach((c, r) => {
      if (identity) weights[r * k + c] = 1;
      else weights.set(head.weights.subarray(c * k, (c + 1) * k), r * k);
    });
    const result = weightedSum(acts, weights, { relu: params.relu });
    return {
      method: "cam",
      targets: rows.targets,
      ...(isOnePerImage(rows) ? {} : { images: rows.images }),
      layer: head.layer,
      map: result,
      range: valueRange(result.data),
      timings: { forward: t1 - t0, weigh: performance.now() - t1 },
      backend: model.backend.name,
      space: "layer",
    };
  },
});
