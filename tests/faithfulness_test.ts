/**
 * Faithfulness of LIME and RISE on the shared pretrained MobileNetV2, measured with the deletion
 * metric of Petsiuk et al. 2018 (pipeline/metrics.ts, blur fill), and LIME's stability across
 * seeds on chelsea. Skipped when the model is not beside the checkout.
 *
 * "Random order" here is a random order of whole superpixels of LIME's own quickshift
 * segmentation (~30 segments of ~1700 px): the granularity of LIME's map, and about that of
 * RISE's (its 7×7 grid cells are 32×32 px). Random *pixel* orders are no baseline for either:
 * scattering replaced pixels over the picture wrecks its texture long before any object is gone,
 * so that curve falls faster than most structured orders (coffee, blur fill: random pixels 0.102
 * against 0.728 for random superpixels) and the comparison ranks granularity, not explanations.
 * `tools/faithfulness.ts` prints the full table, random pixels included.
 */
import assert from "node:assert/strict";
import "../plugins/mod.ts";
import { Random } from "../kernels/random.ts";
import { batchItem } from "../kernels/tensor.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { lime, segmentationImage, segmentImage, type Superpixel } from "../plugins/method/lime.ts";
import { rise } from "../plugins/method/rise.ts";
import { imagePreprocess } from "../plugins/preprocess/image.ts";
import { deletionAuc, randomSegmentOrder } from "../pipeline/metrics.ts";
import type { Batch, Model } from "../pipeline/types.ts";
import { hasNative, MOBILENET, ROOT } from "./_helpers.ts";

const PHOTOS = ["chelsea.png", "coffee.png", "grace_hopper.jpg"];
const HAS_MODEL = (() => {
  try {
    return Deno.statSync(MOBILENET).isFile;
  } catch {
    return false;
  }
})();
const LIME = { samples: 300, seed: 0 };
// LIME's default sample count: seed stability is a property of the default configuration.
const STABLE = { samples: 1000 };
const RISE = { masks: 300, seed: 0 };
const STEPS = 20;
const SEEDS = 5;

async function load(model: Model, photo: string): Promise<Batch> {
  return await imagePreprocess.run(
    { sources: [`${ROOT}/examples/images/${photo}`], model },
    imagePreprocess.params.parse({ preset: "imagenet" }),
  );
}

async function limeOf(model: Model, batch: Batch, params: Record<string, unknown>) {
  const logits = (await model.run(batch.tensor))[model.outputName];
  const parsed = lime.params.parse(params);
  const e = await lime.run({ model, batch, logits }, parsed);
  const table = (e.info!.superpixels as Superpixel[][])[0];
  const top3 = [...table].sort((a, b) => b.weight - a.weight).slice(0, 3).map((sp) => sp.id);
  return { e, top3, labels: segmentImage(segmentationImage(batch, 0), parsed).labels };
}

Deno.test({
  name: "LIME and RISE on MobileNetV2: deletion beats random superpixel orders, stable seeds",
  ignore: !HAS_MODEL,
  async fn(t) {
    // Native onnxruntime where it loads (`--allow-ffi`), else multi-threaded WASM.
    const backend = (await hasNative()) ? "native" : "wasm";
    const model = await openModel(Deno.readFileSync(MOBILENET), { backend });
    const chelsea = await load(model, "chelsea.png");
    try {
      await t.step("deletion AUC against random superpixel orders", async () => {
        const report: string[] = [];
        const ratios = { lime: [] as number[], rise: [] as number[] };
        for (const photo of PHOTOS) {
          const batch = photo === "chelsea.png" ? chelsea : await load(model, photo);
          const logits = (await model.run(batch.tensor))[model.outputName];
          const l = await limeOf(model, batch, LIME);
          const r = await rise.run({ model, batch, logits }, rise.params.parse(RISE));
          const x = batchItem(batch.tensor, 0);
          const target = l.e.targets[0];
          const opts = { target, steps: STEPS, fill: "blur" as const, batchSize: STEPS + 1 };
          const lAuc = await deletionAuc(model, x, { ...opts, map: l.e.map.data });
          const rAuc = await deletionAuc(model, x, { ...opts, map: r.map.data });
          let base = 0;
          const count = Math.max(...l.labels) + 1;
          for (let s = 0; s < SEEDS; s++) {
            const order = randomSegmentOrder(l.labels, { count, random: new Random(100 + s) });
            base += await deletionAuc(model, x, { ...opts, order }) / SEEDS;
          }
          ratios.lime.push(lAuc / base);
          ratios.rise.push(rAuc / base);
          report.push(
            `${photo}: LIME ${lAuc.toFixed(3)}, RISE ${rAuc.toFixed(3)}, random superpixels ${
              base.toFixed(3)
            }`,
          );
        }
        const msg = report.join("; ");
        console.log(`deletion AUC (${model.backend.name}, blur fill, ${STEPS} steps): ${msg}`);
        const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
        // RISE: below the random order on every photo, and clearly below on average.
        assert.ok(ratios.rise.every((q) => q < 1), msg);
        assert.ok(mean(ratios.rise) <= 0.8, msg);
        // LIME: clearly below on average and on two of the three photos. Chelsea is the known
        // exception: removing LIME's best superpixel first *raises* p(Egyptian cat) (0.73 →
        // 0.80), because LIME's weights average over half-masked pictures, where that fur patch
        // decides "cat or not", while on the intact picture it mostly separates the sibling
        // classes tabby and tiger cat (README, Correctness).
        assert.ok(mean(ratios.lime) <= 0.8, msg);
        assert.ok(ratios.lime.filter((q) => q <= 0.8).length >= 2, msg);
      });

      await t.step("top-3 superpixels on chelsea across seeds", async () => {
        const runs: Awaited<ReturnType<typeof limeOf>>[] = [];
        for (const seed of [0, 1, 2]) runs.push(await limeOf(model, chelsea, { ...STABLE, seed }));
        // The segmentation is seeded too (quickshift's 1e-5 tie-breaking noise) and moves a few
        // boundary pixels, so each run's superpixels are named by the seed-0 superpixel they
        // overlap most.
        const same = (labels: Int32Array) => {
          const count = Math.max(...labels) + 1, ref = runs[0].labels;
          const overlap = new Map<number, number>();
          for (let p = 0; p < labels.length; p++) {
            const key = labels[p] * 65536 + ref[p];
            overlap.set(key, (overlap.get(key) ?? 0) + 1);
          }
          const best = new Int32Array(count).fill(-1), most = new Float64Array(count);
          for (const [key, n] of overlap) {
            const s = Math.floor(key / 65536);
            if (n > most[s]) [most[s], best[s]] = [n, key % 65536];
          }
          const agree = labels.reduce((a, l, p) => a + (best[l] === ref[p] ? 1 : 0), 0);
          return { best, agree: agree / labels.length };
        };
        const tops = runs.map((run) => {
          const { best, agree } = same(run.labels);
          assert.ok(agree >= 0.98, `segmentations agree on ${agree} of the pixels`);
          return run.top3.map((id) => best[id]);
        });
        console.log(`LIME top-3 superpixels on chelsea, seeds 0, 1, 2: ${JSON.stringify(tops)}`);
        // Only the best superpixel stands apart (β ≈ 0.19–0.22, twice the next); ranks 2–8 lie
        // within 0.07–0.10 and trade places between seeds even at 1000 samples, so the same
        // top-1 and at least 2 of 3 shared between every pair of seeds is what is stable (held
        // for all pairs of seeds 0–4).
        for (const top of tops) assert.equal(top[0], tops[0][0], JSON.stringify(tops));
        for (let i = 0; i < tops.length; i++) {
          for (let j = i + 1; j < tops.length; j++) {
            const shared = tops[i].filter((id) => tops[j].includes(id)).length;
            assert.ok(shared >= 2, `top-3 sets ${JSON.stringify(tops)}`);
          }
        }
        // A fixed seed gives byte-identical maps (a small run, twice).
        const a = await limeOf(model, chelsea, { samples: 40, seed: 3 });
        const b = await limeOf(model, chelsea, { samples: 40, seed: 3 });
        assert.deepEqual(new Uint8Array(a.e.map.data.buffer), new Uint8Array(b.e.map.data.buffer));
      });
    } finally {
      await model.dispose();
    }
  },
});
