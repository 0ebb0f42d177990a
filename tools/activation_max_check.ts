/**
 * Acceptance check of `activation-max` on the shared pretrained MobileNetV2 (too slow for the
 * default test run): the goldfish logit (class 1) with the Fourier and the raw-pixel
 * parameterization — softmax probability and high-frequency energy share of each — a channel
 * objective's gain over the starting noise, and steps per second. Writes PNGs to `out/`.
 *
 *   deno run --allow-all tools/activation_max_check.ts [steps]
 *
 * @module
 */
import "../plugins/mod.ts";
import { fft } from "../kernels/fft.ts";
import { encodePng } from "../kernels/png_encode.ts";
import type { Explanation, Model } from "../pipeline/types.ts";
import type { MethodPlugin, ModelPlugin } from "../pipeline/plugin.ts";
import { getPlugin } from "../pipeline/registry.ts";
import { tensor } from "../kernels/tensor.ts";
import { inputToImage, tileImages } from "../plugins/render/image.ts";
import { modelNormalization } from "../plugins/preprocess/image.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const steps = Number(Deno.args[0] ?? 256);
const onnx = getPlugin("model", "onnx") as ModelPlugin<unknown>;
const model = await onnx.run(
  { baseDir: ROOT },
  onnx.params.parse({
    path: "../shared/models/imagenet/mobilenet_v2_float32.onnx",
    backend: "wasm",
  }),
) as Model;
const method = getPlugin("method", "activation-max") as MethodPlugin<unknown>;
const input = {
  model,
  batch: { tensor: tensor(new Float32Array(3 * 224 * 224), [1, 3, 224, 224]), names: ["am"] },
  logits: tensor(new Float32Array(1000), [1, 1000]),
};

/** Share of spectral energy (mean removed per channel) above `cut` of Nyquist, on the [0,1] image. */
function highFrequencyShare(e: Explanation, cut = 0.25): number {
  const [, , h, w] = e.map.dims;
  const { mean, std, gain } = modelNormalization(model);
  let high = 0, total = 0;
  for (let c = 0; c < 3; c++) {
    const re = new Float64Array(h * w), im = new Float64Array(h * w);
    let m = 0;
    for (let p = 0; p < h * w; p++) {
      m += re[p] = (e.map.data[c * h * w + p] * std[c] + mean[c]) / gain;
    }
    m /= h * w;
    for (let p = 0; p < h * w; p++) re[p] -= m;
    for (let y = 0; y < h; y++) {
      const r = re.subarray(y * w, (y + 1) * w), i = im.subarray(y * w, (y + 1) * w);
      fft(r, i);
    }
    const cr = new Float64Array(h), ci = new Float64Array(h);
    for (let x = 0; x < w; x++) {
      for (let y = 0; y < h; y++) [cr[y], ci[y]] = [re[y * w + x], im[y * w + x]];
      fft(cr, ci);
      const fx = (x < w / 2 ? x : x - w) / w;
      for (let y = 0; y < h; y++) {
        const fy = (y < h / 2 ? y : y - h) / h;
        const power = cr[y] ** 2 + ci[y] ** 2;
        total += power;
        if (Math.hypot(fx, fy) > cut * 0.5) high += power;
      }
    }
  }
  return high / total;
}

async function run(name: string, params: Record<string, unknown>) {
  const t = performance.now();
  const e = await method.run(input, method.params.parse({ ...params, steps }));
  const s = (performance.now() - t) / 1000;
  const info = e.info as Record<string, number[] | number>;
  const tiles = Array.from(
    { length: e.map.dims[0] },
    (_, r) => inputToImage(e.map, model, { row: r }),
  );
  await Deno.mkdir(`${ROOT}/out`, { recursive: true });
  await Deno.writeFile(`${ROOT}/out/activation_max_${name}.png`, encodePng(tileImages(tiles)));
  console.log(JSON.stringify({
    name,
    seconds: +s.toFixed(1),
    steps_per_second: +(info.steps_per_second as number).toFixed(2),
    initial: info.initial,
    final: info.final,
    probability: info.probability,
    high_frequency_share: +highFrequencyShare(e).toFixed(4),
  }));
  return e;
}

await run("goldfish_fourier", { objective: "logit", target: 1 });
await run("goldfish_pixel", {
  objective: "logit",
  target: 1,
  parameterization: "pixel",
  decorrelate: false,
});
await run("channel", { objective: "channel", layer: Deno.args[1] ?? "474", channel: 0 });
await model.dispose();
