/**
 * Example method plugin: Eigen-CAM (Muhammad & Yeasin 2020, "Eigen-CAM: Class Activation Map
 * using Principal Components"), the projection of a layer's activations on their first principal
 * component. Class-agnostic: no gradients, one forward pass.
 *
 * As pytorch-grad-cam's `get_2d_projection`: the activations of one image, `[C, h·w]`, are
 * transposed to X `[h·w, C]` and centred per channel over positions; the map is X·v₁, v₁ the
 * first right-singular vector of X, then ReLU (pytorch-grad-cam's `BaseCAM`). An SVD leaves the
 * sign of v₁ to LAPACK, which flips some maps; here it is oriented so the map correlates
 * positively with the channel-mean activation.
 *
 * @module
 */
import {
  defineMethod,
  explanation,
  resolveLayer,
  resolveTargetRows,
  rowsOfImage,
  targetParam,
  tensor,
  z,
} from "../../mod.ts";

/** Eigen-CAM: X·v₁ of the centred activations of `layer`, `[N,1,h,w]` at the layer's size. */
export const eigenCam = defineMethod({
  name: "eigen-cam",
  description: "First principal component of a layer's activations, [N,1,h,w]",
  params: z.object({
    target: targetParam, // only labels the rows: Eigen-CAM does not depend on the class
    layer: z.string().optional(),
    relu: z.boolean().default(true),
  }).strict(),
  async run({ model, batch, logits }, { target, layer, relu }) {
    const rows = resolveTargetRows(target, logits);
    const { name } = await resolveLayer(model, layer, { rank: 4 });
    const acts = (await model.run(batch.tensor, { outputs: [name] }))[name];
    const [n, c, h, w] = acts.dims;
    const out = new Float32Array(rows.images.length * h * w);
    // The map does not depend on the class: one projection per image serves all its rows.
    for (let image = 0; image < n; image++) {
      const mine = rowsOfImage(rows, image);
      if (mine.length === 0) continue;
      const a = acts.data.subarray(image * c * h * w, (image + 1) * c * h * w);
      const map = firstComponentProjection(a, { channels: c, positions: h * w });
      for (const r of mine) {
        for (let p = 0; p < h * w; p++) out[r * h * w + p] = relu ? Math.max(map[p], 0) : map[p];
      }
    }
    const map = tensor(out, [rows.images.length, 1, h, w]);
    return explanation(model, { method: "eigen-cam", rows, map, space: "layer", layer: name });
  },
});

/**
 * X·v₁ for X = Aᵀ centred per channel (A is one image's activations, `[channels, positions]`
 * row-major), by power iteration on the smaller of the Gram matrices XᵀX and XXᵀ, in float64.
 */
export function firstComponentProjection(
  a: Float32Array,
  shape: { channels: number; positions: number },
): Float64Array {
  const { channels: c, positions: n } = shape;
  const x = new Float64Array(n * c); // X[p, k]
  for (let k = 0; k < c; k++) {
    let mean = 0;
    for (let p = 0; p < n; p++) mean += a[k * n + p];
    mean /= n;
    for (let p = 0; p < n; p++) x[p * c + k] = a[k * n + p] - mean;
  }
  // With XXᵀ u = λu, X·v₁ = Xᵀ... collapses to √λ·u; with XᵀX v = λv it is X·v.
  const byPositions = n <= c;
  const m = byPositions ? n : c;
  const gram = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = i; j < m; j++) {
      let s = 0;
      if (byPositions) { for (let k = 0; k < c; k++) s += x[i * c + k] * x[j * c + k]; }
      else for (let p = 0; p < n; p++) s += x[p * c + i] * x[p * c + j];
      gram[i * m + j] = gram[j * m + i] = s;
    }
  }
  let v = new Float64Array(m).map((_, i) => 1 + i / m);
  let lambda = 0;
  for (let iter = 0; iter < 20000; iter++) {
    const next = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < m; j++) s += gram[i * m + j] * v[j];
      next[i] = s;
    }
    const norm = Math.hypot(...next);
    if (norm === 0) return new Float64Array(n);
    let change = 0;
    for (let i = 0; i < m; i++) change = Math.max(change, Math.abs(next[i] / norm - v[i]));
    v = next.map((s) => s / norm);
    lambda = norm;
    if (change < 1e-13) break;
  }
  const proj = new Float64Array(n);
  if (byPositions) { for (let p = 0; p < n; p++) proj[p] = Math.sqrt(lambda) * v[p]; }
  else {
    for (let p = 0; p < n; p++) {
      let s = 0;
      for (let k = 0; k < c; k++) s += x[p * c + k] * v[k];
      proj[p] = s;
    }
  }
  let agree = 0; // Σ proj is 0, so this is the covariance with the channel-mean map
  for (let p = 0; p < n; p++) {
    let meanAct = 0;
    for (let k = 0; k < c; k++) meanAct += a[k * n + p];
    agree += proj[p] * meanAct;
  }
  return agree < 0 ? proj.map((s) => -s) : proj;
}
