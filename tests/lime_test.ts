/**
 * LIME's parts against references: quickshift and SLIC against scikit-image 0.19 on 224×224
 * photos, the weighted ridge against a closed-form numpy solution (fixtures from
 * tools/make_segmentation_fixtures.py), and LIME itself for reproducibility, seed stability and
 * faithfulness on the emotion model.
 */
import assert from "node:assert/strict";
import { decode } from "fast-png";
import { quickshift, type RgbImage, type Segmentation } from "../kernels/quickshift.ts";
import { selectFeatures, weightedRidge } from "../kernels/ridge.ts";
import { slic } from "../kernels/slic.ts";
import "../plugins/mod.ts";
import { Random } from "../kernels/random.ts";
import { batchItem, gatherBatch, type Tensor, tensor } from "../kernels/tensor.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import type { Superpixel } from "../plugins/method/lime.ts";
import { superpixelsRender } from "../plugins/render/superpixels.ts";
import type { Model } from "../pipeline/types.ts";
import { EMOTION, fixture, methodInput, ROOT, runMethod } from "./_helpers.ts";

const SEG = `${ROOT}/tests/fixtures/segmentation`;

function photo(name: string): RgbImage {
  const png = decode(Deno.readFileSync(`${SEG}/${name}.png`));
  const n = png.width * png.height;
  const data = new Float64Array(n * 3);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) data[3 * p + c] = png.data[p * png.channels + c] / 255;
  }
  return { width: png.width, height: png.height, data };
}

function reference(name: string): Segmentation {
  const png = decode(Deno.readFileSync(`${SEG}/${name}.png`));
  const labels = Int32Array.from(png.data as Uint16Array);
  let count = 0;
  for (const l of labels) count = Math.max(count, l + 1);
  return { width: png.width, height: png.height, labels, count };
}

function boundaries(s: Segmentation): Uint8Array {
  const { width: w, height: h, labels } = s;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      if (
        (x + 1 < w && labels[p + 1] !== labels[p]) || (y + 1 < h && labels[p + w] !== labels[p])
      ) out[p] = 1;
    }
  }
  return out;
}

/** Share of pixels with the same label. */
function agreement(a: Segmentation, b: Segmentation): number {
  let same = 0;
  for (let p = 0; p < a.labels.length; p++) if (a.labels[p] === b.labels[p]) same++;
  return same / a.labels.length;
}

/** Share of `truth`'s boundary pixels with a boundary pixel of `found` within `tol` pixels. */
export function boundaryRecall(found: Segmentation, truth: Segmentation, tol = 2): number {
  const bf = boundaries(found), bt = boundaries(truth);
  const { width: w, height: h } = truth;
  let hit = 0, total = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!bt[y * w + x]) continue;
      total++;
      search: for (let dy = -tol; dy <= tol; dy++) {
        for (let dx = -tol; dx <= tol; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w && bf[yy * w + xx]) {
            hit++;
            break search;
          }
        }
      }
    }
  }
  return total ? hit / total : 1;
}

for (const name of ["chelsea", "coffee"]) {
  Deno.test(`quickshift matches scikit-image on ${name}`, () => {
    const img = photo(name);
    const t0 = performance.now();
    const ours = quickshift(img, { kernelSize: 4, maxDist: 200, ratio: 0.2, seed: 0 });
    const ms = performance.now() - t0;
    const ref = reference(`${name}.quickshift`);
    const recall = boundaryRecall(ours, ref);
    const same = agreement(ours, ref);
    console.log(
      `quickshift ${name}: ${ours.count} vs ${ref.count} segments, recall ${recall.toFixed(3)}, ` +
        `same label ${(100 * same).toFixed(2)}%, ${ms.toFixed(0)} ms`,
    );
    assert.ok(Math.abs(ours.count - ref.count) <= 0.1 * ref.count);
    assert.ok(recall >= 0.9);
    // Only the 1e-5 tie-breaking noise differs (numpy's generator is not replicated).
    assert.ok(same >= 0.99);
  });

  Deno.test(`slic matches scikit-image on ${name}`, () => {
    const img = photo(name);
    const t0 = performance.now();
    const ours = slic(img);
    const ms = performance.now() - t0;
    const ref = reference(`${name}.slic`);
    // SLIC has no random part: beyond the tolerances, it must agree label for label.
    const recall = boundaryRecall(ours, ref);
    const same = agreement(ours, ref);
    console.log(
      `slic ${name}: ${ours.count} vs ${ref.count} segments, recall ${recall.toFixed(3)}, ` +
        `same label ${(100 * same).toFixed(2)}%, ${ms.toFixed(0)} ms`,
    );
    assert.ok(Math.abs(ours.count - ref.count) <= 0.1 * ref.count);
    assert.ok(recall >= 0.9);
    assert.ok(same >= 0.999);
  });
}

Deno.test("weighted ridge equals the closed-form solution", () => {
  const x = fixture("tests/fixtures/segmentation/ridge_x.npy");
  const y = fixture("tests/fixtures/segmentation/ridge_y.npy").data;
  const w = fixture("tests/fixtures/segmentation/ridge_w.npy").data;
  const ref = fixture("tests/fixtures/segmentation/ridge_coef.npy").data;
  const [rows, cols] = x.dims;
  const fit = weightedRidge({ rows, cols, data: x.data }, y, { weights: w, alpha: 1 });
  for (let j = 0; j < cols; j++) assert.ok(Math.abs(fit.coef[j] - ref[j]) < 1e-5, `coef ${j}`);
  assert.ok(Math.abs(fit.intercept - ref[cols]) < 1e-5);
  assert.ok(Math.abs(fit.score - ref[cols + 1]) < 1e-5);
  // The largest true effects are found by both selection rules.
  const top = Array.from({ length: cols }, (_, j) => j)
    .sort((i, j) => Math.abs(fit.coef[j]) - Math.abs(fit.coef[i])).slice(0, 3);
  const design = { rows, cols, data: x.data };
  for (const method of ["highest_weights", "forward_selection"] as const) {
    const picked = selectFeatures(design, y, { weights: w, count: 3, method });
    assert.deepEqual([...picked].sort(), [...top].sort(), method);
  }
});

/** A linear classifier in JS: class 0 scores Σ_p x_p·v_p, class 1 the negative. */
function linearModel(v: Float32Array, dims: number[]): Model {
  return {
    name: "linear",
    backend: { name: "wasm", reason: "test" },
    inputName: "x",
    inputShape: [-1, ...dims],
    outputName: "y",
    tensors: () => Promise.resolve([]),
    run(x: Tensor) {
      const per = v.length, n = x.dims[0];
      const out = new Float32Array(n * 2);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let p = 0; p < per; p++) s += x.data[i * per + p] * v[p];
        out[2 * i] = s;
        out[2 * i + 1] = -s;
      }
      return Promise.resolve({ y: tensor(out, [n, 2]) });
    },
    onnx: new Uint8Array(),
    dispose: () => Promise.resolve(),
  };
}

Deno.test("LIME recovers a linear model's superpixel sums exactly", async () => {
  const img = photo("coffee");
  const [h, w] = [img.height, img.width];
  const plane = h * w;
  const x = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) x[c * plane + p] = img.data[3 * p + c];
  }
  const random = new Random(1);
  const v = random.fillNormal(new Float32Array(3 * plane));
  const model = linearModel(v, [3, h, w]);
  const batch = tensor(x, [1, 3, h, w]);
  const input = await methodInput(model, batch);
  const e = await runMethod("lime", input, {
    samples: 150,
    fill: 0,
    alpha: 0,
    output: "logit",
    target: 0,
  });
  const seg = quickshift(img, { seed: 0 });
  const table = (e.info!.superpixels as Superpixel[][])[0];
  assert.equal(table.length, seg.count);
  const truth = new Float64Array(seg.count);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) truth[seg.labels[p]] += x[c * plane + p] * v[c * plane + p];
  }
  const scale = Math.max(...truth.map(Math.abs));
  for (const sp of table) assert.ok(Math.abs(sp.weight - truth[sp.id]) < 1e-3 * scale, `${sp.id}`);
  assert.ok((e.info!.score as number[])[0] > 0.9999);
  assert.equal(table.reduce((s, sp) => s + sp.pixels, 0), plane);
  assert.equal(e.map.data[0], Math.fround(table[seg.labels[0]].weight));
});

const topSet = (table: readonly Superpixel[], k: number, seg: Int32Array | Float32Array) => {
  const ids = [...table].sort((a, b) => b.weight - a.weight).slice(0, k);
  // Pixels of the top superpixels, so segmentations drawn with other seeds compare fairly.
  const set = new Set<number>();
  for (const sp of ids) {
    seg.forEach((v, p) => {
      if (v === Math.fround(sp.weight)) set.add(p);
    });
  }
  return set;
};

Deno.test("LIME is reproducible from its seed and stable across seeds on the emotion model", async () => {
  const model = await openModel(Deno.readFileSync(EMOTION), { backend: "wasm" });
  try {
    const x = gatherBatch(fixture("tests/fixtures/emotion/inputs.npy"), [0, 1]);
    const input = await methodInput(model, x);
    const params = { samples: 150, kernel_size: 2 };
    const a = await runMethod("lime", input, { ...params, seed: 5 });
    const b = await runMethod("lime", input, { ...params, seed: 5 });
    assert.deepEqual(new Uint8Array(a.map.data.buffer), new Uint8Array(b.map.data.buffer));
    const others = [a, await runMethod("lime", input, { ...params, seed: 6 })];
    others.push(await runMethod("lime", input, { ...params, seed: 7 }));
    const plane = 64 * 64;
    const overlaps: string[] = [];
    for (let i = 0; i < 2; i++) {
      const sets = others.map((e) =>
        topSet((e.info!.superpixels as Superpixel[][])[i], 3, batchItem(e.map, i).data)
      );
      for (let j = 1; j < sets.length; j++) {
        const inter = [...sets[0]].filter((p) => sets[j].has(p)).length;
        const iou = inter / (sets[0].size + sets[j].size - inter);
        overlaps.push(iou.toFixed(2));
        assert.ok(iou >= 0.6, `face ${i}: top-3 IoU ${iou} between seeds`);
      }
      assert.ok(sets[0].size < plane);
    }
    console.log(`LIME top-3 superpixel IoU across seeds: ${overlaps.join(", ")}`);
    // The superpixels render draws the table; the json render carries it.
    const files = await superpixelsRender.run({
      batch: input.batch,
      explanations: [a],
      predictions: [],
      model,
    }, superpixelsRender.params.parse({ topk: 3, positive_only: false }));
    assert.deepEqual(files.map((f) => f.path), [
      "img0_lime_superpixels.png",
      "img1_lime_superpixels.png",
    ]);
    const png = decode(files[0].bytes);
    assert.equal(png.width, 64);
  } finally {
    await model.dispose();
  }
});
