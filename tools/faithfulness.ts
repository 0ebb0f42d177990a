/**
 * Deletion (and insertion) AUCs of LIME and RISE on the shared MobileNetV2, against random
 * pixel orders and random superpixel orders of LIME's own segmentation (Petsiuk et al. 2018,
 * section 4.1; pipeline/metrics.ts).
 *
 *   deno run --allow-all tools/faithfulness.ts [--samples 1000] [--masks 2000] [--steps 50]
 *     [--seeds 3] [--photos chelsea.png,coffee.png,grace_hopper.jpg,astronaut] [--matched]
 *     [--backend wasm|native] [--json faithfulness.json]
 *
 * `--matched` also runs LIME with its `fill` set to the metric's (0 for `zero`, `blur` for
 * `blur`), so the surrogate is fit on the same kind of perturbation the metric applies (column
 * "LIME m.").
 * `astronaut` is read from Debian's scikit-image data (`skimage/data/astronaut.png`, public
 * domain, NASA) when present; it is not bundled. Prints one markdown table per fill (`zero`,
 * `blur`) and writes `out/faithfulness.json`.
 */
import "../plugins/mod.ts";
import type { BackendRequest } from "../kernels/backend.ts";
import { Random } from "../kernels/random.ts";
import { batchItem } from "../kernels/tensor.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { lime, segmentationImage, segmentImage } from "../plugins/method/lime.ts";
import { rise } from "../plugins/method/rise.ts";
import { imagePreprocess } from "../plugins/preprocess/image.ts";
import {
  deletionAuc,
  insertionAuc,
  type MetricFill,
  randomOrder,
  randomSegmentOrder,
} from "../pipeline/metrics.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const args = Deno.args;
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const samples = Number(opt("samples", "1000"));
const masks = Number(opt("masks", "2000"));
const steps = Number(opt("steps", "50"));
const seeds = Number(opt("seeds", "3"));
const matched = args.includes("--matched");
const photos = opt("photos", "chelsea.png,coffee.png,grace_hopper.jpg,astronaut").split(",");
const SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data";

const model = await openModel(
  Deno.readFileSync(`${ROOT}../shared/models/imagenet/mobilenet_v2_float32.onnx`),
  {
    backend: opt("backend", "wasm") as BackendRequest,
    labels: Deno.readTextFileSync(`${ROOT}../shared/models/imagenet/imagenet_labels_1000.txt`)
      .split("\n"),
  },
);
const results: Record<string, unknown>[] = [];
const fills: MetricFill[] = ["zero", "blur"];
for (const photo of photos) {
  const path = photo === "astronaut"
    ? `${SKIMAGE}/astronaut.png`
    : `${ROOT}examples/images/${photo}`;
  try {
    Deno.statSync(path);
  } catch {
    console.log(`skipping ${photo}: ${path} not found`);
    continue;
  }
  const batch = await imagePreprocess.run(
    { sources: [path], model },
    imagePreprocess.params.parse({ preset: "imagenet" }),
  );
  const logits = (await model.run(batch.tensor))[model.outputName];
  const input = { model, batch, logits };
  let t0 = performance.now();
  const limeParams = lime.params.parse({ samples, seed: 0 });
  const l = await lime.run(input, limeParams);
  const limeMs = performance.now() - t0;
  t0 = performance.now();
  const r = await rise.run(input, rise.params.parse({ masks, seed: 0 }));
  const riseMs = performance.now() - t0;
  const target = l.targets[0];
  const x = batchItem(batch.tensor, 0);
  const [, , h, w] = x.dims;
  const plane = h * w;
  const seg = segmentImage(segmentationImage(batch, 0), limeParams);
  for (const fill of fills) {
    const opts = { target, steps, fill, batchSize: 17 };
    const row: Record<string, unknown> = {
      photo,
      class: `${target} ${model.labels?.[target] ?? ""}`.trim(),
      fill,
      segments: seg.count,
      lime_r2: (l.info!.score as number[])[0],
      lime_ms: Math.round(limeMs),
      rise_ms: Math.round(riseMs),
    };
    row.lime = await deletionAuc(model, x, { ...opts, map: l.map.data });
    if (matched) {
      const lm = await lime.run(
        input,
        lime.params.parse({ samples, seed: 0, fill: fill === "zero" ? 0 : fill }),
      );
      row.lime_matched = await deletionAuc(model, x, { ...opts, map: lm.map.data });
      row.lime_matched_insertion = await insertionAuc(model, x, { ...opts, map: lm.map.data });
    }
    row.rise = await deletionAuc(model, x, { ...opts, map: r.map.data });
    let pix = 0, sp = 0, spIns = 0;
    for (let s = 0; s < seeds; s++) {
      const pixels = randomOrder(plane, new Random(100 + s));
      pix += await deletionAuc(model, x, { ...opts, order: pixels });
      const order = randomSegmentOrder(seg.labels, {
        count: seg.count,
        random: new Random(200 + s),
      });
      sp += await deletionAuc(model, x, { ...opts, order });
      spIns += await insertionAuc(model, x, { ...opts, order });
    }
    row.random_pixels = pix / seeds;
    row.random_superpixels = sp / seeds;
    row.random_superpixels_insertion = spIns / seeds;
    row.lime_insertion = await insertionAuc(model, x, { ...opts, map: l.map.data });
    row.rise_insertion = await insertionAuc(model, x, { ...opts, map: r.map.data });
    results.push(row);
    console.log(JSON.stringify(row));
  }
}
const f = (v: unknown) => v === undefined ? "–" : (v as number).toFixed(3);
for (const fill of fills) {
  console.log(`\nfill: ${fill} (deletion AUC, lower is better; ${steps} steps)\n`);
  console.log(
    "| photo | class | LIME | LIME m. | RISE | random pixels | random superpixels | LIME ins. | " +
      "RISE ins. | random sp. ins. |",
  );
  console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const row of results.filter((q) => q.fill === fill)) {
    const cells = [
      row.lime,
      row.lime_matched,
      row.rise,
      row.random_pixels,
      row.random_superpixels,
      row.lime_insertion,
      row.rise_insertion,
      row.random_superpixels_insertion,
    ];
    console.log(`| ${row.photo} | ${row.class} | ${cells.map(f).join(" | ")} |`);
  }
}
await Deno.mkdir(`${ROOT}out`, { recursive: true });
Deno.writeTextFileSync(
  `${ROOT}out/${opt("json", "faithfulness.json")}`,
  JSON.stringify(results, null, 2),
);
await model.dispose();
