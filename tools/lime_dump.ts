/**
 * Dump one LIME problem on the shared MobileNetV2 for an independent check of the surrogate fit
 * (tools/lime_reference.py), and check the `lime` plugin against it.
 *
 *   deno run --allow-all tools/lime_dump.ts [--photo chelsea.png] [--samples 300] [--out DIR]
 *
 * The 0/1 sample matrix is redrawn here from LIME's seed exactly as the plugin draws it, the
 * perturbed pictures are rebuilt here (superpixels switched off take their superpixel's mean, as
 * `lime_image` does with `hide_color=None`) and run through the model, one small batch at a time.
 * Writes `z.npy` (samples × superpixels, float32) and `y.npy` (the top-1 class's probability per
 * sample) to DIR (default `tests/fixtures/lime/`), and prints how far the plugin's coefficients
 * are from a refit of the dumped samples with `explainWithData` (they must agree: same samples,
 * same scores). Then `/usr/bin/python3 tools/lime_reference.py DIR` writes the reference fit.
 */
import "../plugins/mod.ts";
import { encodeNpy } from "../kernels/npy.ts";
import { Random } from "../kernels/random.ts";
import { batchItem, tensor } from "../kernels/tensor.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import {
  explainWithData,
  lime,
  limeWeights,
  segmentationImage,
  segmentImage,
  type Superpixel,
} from "../plugins/method/lime.ts";
import { imagePreprocess } from "../plugins/preprocess/image.ts";
import { softmaxOf } from "../pipeline/targets.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const args = Deno.args;
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const photo = opt("photo", "chelsea.png");
const samples = Number(opt("samples", "300"));
const out = opt("out", `${ROOT}tests/fixtures/lime`);
const model = await openModel(
  Deno.readFileSync(`${ROOT}../shared/models/imagenet/mobilenet_v2_float32.onnx`),
  {
    backend: "wasm",
    labels: Deno.readTextFileSync(`${ROOT}../shared/models/imagenet/imagenet_labels_1000.txt`)
      .split("\n"),
  },
);
const batch = await imagePreprocess.run(
  { sources: [`${ROOT}examples/images/${photo}`], model },
  imagePreprocess.params.parse({ preset: "imagenet" }),
);
const logits = (await model.run(batch.tensor))[model.outputName];
const params = lime.params.parse({ samples, seed: 0 });
const e = await lime.run({ model, batch, logits }, params);
const target = e.targets[0];

const seg = segmentImage(segmentationImage(batch, 0), params);
const d = seg.count;
const random = new Random(params.seed);
const z = new Float32Array(samples * d);
for (let k = 0; k < samples * d; k++) z[k] = k < d ? 1 : random.nextUint32() >>> 31;
const [, c, h, w] = batch.tensor.dims;
const plane = h * w;
const x = batchItem(batch.tensor, 0).data;
const sum = new Float64Array(d * c), count = new Float64Array(d);
for (let p = 0; p < plane; p++) {
  count[seg.labels[p]]++;
  for (let ch = 0; ch < c; ch++) sum[seg.labels[p] * c + ch] += x[ch * plane + p];
}
const y = new Float32Array(samples);
const chunk = 8;
for (let start = 0; start < samples; start += chunk) {
  const n = Math.min(chunk, samples - start);
  const buf = new Float32Array(n * c * plane);
  for (let k = 0; k < n; k++) {
    for (let p = 0; p < plane; p++) {
      const l = seg.labels[p];
      const on = z[(start + k) * d + l] === 1;
      for (let ch = 0; ch < c; ch++) {
        buf[k * c * plane + ch * plane + p] = on ? x[ch * plane + p] : sum[l * c + ch] / count[l];
      }
    }
  }
  const scores = (await model.run(tensor(buf, [n, c, h, w])))[model.outputName];
  const k1 = scores.dims[1];
  for (let k = 0; k < n; k++) {
    y[start + k] = softmaxOf(scores.data.subarray(k * k1, (k + 1) * k1))(target);
  }
}
const design = { rows: samples, cols: d, data: z };
const refit = explainWithData(design, y, { weights: limeWeights(design) });
const table = (e.info!.superpixels as Superpixel[][])[0];
const pluginCoef = Float64Array.from(table, (sp) => sp.weight);
let diff = 0, scale = 0;
for (let j = 0; j < d; j++) {
  diff = Math.max(diff, Math.abs(pluginCoef[j] - refit.coef[j]));
  scale = Math.max(scale, Math.abs(refit.coef[j]));
}
console.log(
  `${photo}: class ${target} (${model.labels?.[target] ?? "?"}), ${d} superpixels, ${samples} ` +
    `samples; plugin vs refit max |Δβ| / max |β| = ${(diff / scale).toExponential(2)}, ` +
    `R² ${refit.score.toFixed(3)}`,
);
await Deno.mkdir(out, { recursive: true });
const save = (name: string, data: Float32Array, dims: number[]) =>
  Deno.writeFileSync(`${out}/${name}`, encodeNpy(tensor(data, dims)));
save("z.npy", z, [samples, d]);
save("y.npy", y, [samples]);
await model.dispose();
