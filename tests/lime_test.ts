/**
 * LIME's parts against references: quickshift and SLIC against scikit-image 0.19 on 224×224
 * photos, the weighted ridge against a closed-form numpy solution (fixtures from
 * tools/make_segmentation_fixtures.py), the lasso path against an independent numpy homotopy and
 * soft-thresholding (tools/make_lasso_fixtures.py), LIME's surrogate fit on MobileNetV2 samples
 * against a numpy reimplementation of `LimeBase` (tools/lime_dump.ts, tools/lime_reference.py),
 * and LIME itself for reproducibility and seed stability on the emotion model.
 */
import assert from "node:assert/strict";
import { decode } from "fast-png";
import { quickshift, type RgbImage, type Segmentation } from "../kernels/quickshift.ts";
import { lassoPath, lassoPathSelect } from "../kernels/lasso_path.ts";
import { selectFeatures, weightedRidge } from "../kernels/ridge.ts";
import { slic } from "../kernels/slic.ts";
import "../plugins/mod.ts";
import { Random } from "../kernels/random.ts";
import { batchItem, gatherBatch, tensor } from "../kernels/tensor.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { explainWithData, limeWeights, type Superpixel } from "../plugins/method/lime.ts";
import { superpixelsRender } from "../plugins/render/superpixels.ts";
import { EMOTION, fixture, linearModel, methodInput, ROOT, runMethod } from "./_helpers.ts";

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

Deno.test("lasso path equals an independent homotopy, with variables leaving the path", () => {
  const x = fixture("tests/fixtures/lime/lasso_x.npy");
  const t = fixture("tests/fixtures/lime/lasso_t.npy").data;
  const alphas = fixture("tests/fixtures/lime/lasso_alphas.npy").data;
  const coefs = fixture("tests/fixtures/lime/lasso_coefs.npy").data;
  const [rows, cols] = x.dims;
  const path = lassoPath({ rows, cols, data: x.data }, t);
  // The references are stored as float64 but read back as float32: 1e-6 relative.
  assert.equal(path.alphas.length, alphas.length);
  const scale = Math.max(...coefs.map(Math.abs));
  let left = 0;
  for (let i = 0; i < alphas.length; i++) {
    assert.ok(Math.abs(path.alphas[i] - alphas[i]) <= 1e-6 * alphas[0], `alpha ${i}`);
    for (let j = 0; j < cols; j++) {
      const ref = coefs[i * cols + j];
      assert.ok(Math.abs(path.coefs[i][j] - ref) <= 1e-6 * scale, `coef ${i},${j}`);
      if (i > 0 && coefs[(i - 1) * cols + j] !== 0 && ref === 0) left++;
    }
  }
  assert.ok(left >= 1, "the fixture exercises the lasso modification");
  // LIME's selection: the last breakpoint with at most K nonzero coefficients, for every K.
  const z = fixture("tests/fixtures/lime/lasso_z.npy");
  const y = fixture("tests/fixtures/lime/lasso_y.npy").data;
  const w = fixture("tests/fixtures/lime/lasso_w.npy").data;
  const chosen = fixture("tests/fixtures/lime/lasso_select.npy").data;
  for (let k = 1; k <= cols; k++) {
    const want = Array.from({ length: cols }, (_, j) => j).filter((j) =>
      chosen[(k - 1) * cols + j] === 1
    );
    const design = { rows, cols, data: z.data };
    assert.deepEqual(lassoPathSelect(design, y, { weights: w, count: k }), want, `K = ${k}`);
    const viaSelect = selectFeatures(design, y, { weights: w, count: k, method: "lasso_path" });
    assert.deepEqual(viaSelect, want);
  }
});

Deno.test("lasso path on an orthogonal design is soft-thresholding", () => {
  // Columns of an 8×8 Hadamard matrix: xᵢᵀxⱼ = 8·δᵢⱼ = n·δᵢⱼ, so β_j(α) = S(x_jᵀy / n, α).
  const n = 8, cols = 4;
  const h = (i: number, j: number) =>
    (-1) ** [...(i & j).toString(2)].filter((b) => b === "1").length;
  const data = new Float64Array(n * cols);
  for (let i = 0; i < n; i++) for (let j = 0; j < cols; j++) data[i * cols + j] = h(i, j + 1);
  const truth = [0.3, -1.2, 0.7, -0.05];
  const y = Array.from({ length: n }, (_, i) => truth.reduce((s, b, j) => s + b * h(i, j + 1), 0));
  const path = lassoPath({ rows: n, cols, data }, y);
  const sorted = truth.map(Math.abs).sort((a, b) => b - a);
  assert.deepEqual(Array.from(path.alphas, (a) => +a.toFixed(12)), [...sorted, 0]);
  path.alphas.forEach((alpha, i) => {
    truth.forEach((b, j) => {
      const soft = Math.sign(b) * Math.max(Math.abs(b) - alpha, 0);
      assert.ok(Math.abs(path.coefs[i][j] - soft) < 1e-12, `point ${i} coef ${j}`);
    });
  });
  assert.deepEqual(path.active, [1, 2, 0, 3]);
});

Deno.test("LIME's surrogate equals a numpy reimplementation of LimeBase on MobileNetV2 samples", () => {
  // 300 samples of LIME on chelsea ("Egyptian cat") dumped by tools/lime_dump.ts; the reference
  // (tools/lime_reference.py) recomputes lime_image's distances and kernel and LimeBase's
  // feature selection and ridge in numpy.
  const z = fixture("tests/fixtures/lime/z.npy");
  const y = fixture("tests/fixtures/lime/y.npy").data;
  const ref = fixture("tests/fixtures/lime/lime_ref.npy");
  const [rows, cols] = z.dims;
  const design = { rows, cols, data: z.data };
  const weights = limeWeights(design);
  const cases = [
    ["auto", undefined],
    ["highest_weights", 5],
    ["forward_selection", 5],
    ["lasso_path", 5],
    ["lasso_path", 10],
    ["none", undefined],
  ] as const;
  const width = ref.dims[1];
  cases.forEach(([featureSelection, numFeatures], c) => {
    const row = ref.data.subarray(c * width, (c + 1) * width);
    const fit = explainWithData(design, y, { weights, featureSelection, numFeatures });
    const scale = Math.max(...row.subarray(0, cols).map(Math.abs));
    for (let j = 0; j < cols; j++) {
      assert.ok(Math.abs(fit.coef[j] - row[j]) <= 1e-5 * scale, `${featureSelection} coef ${j}`);
      assert.equal(fit.coef[j] === 0, row[j] === 0, `${featureSelection} selects ${j}`);
    }
    assert.ok(Math.abs(fit.intercept - row[cols]) < 1e-6, featureSelection);
    assert.ok(Math.abs(fit.score - row[cols + 1]) < 1e-5, featureSelection);
    assert.ok(Math.abs(fit.localPred - row[cols + 2]) < 1e-6, featureSelection);
  });
});

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
  // lasso_path with num_features keeps at most that many superpixels.
  const sparse = await runMethod("lime", input, {
    samples: 150,
    fill: 0,
    output: "logit",
    target: 0,
    feature_selection: "lasso_path",
    num_features: 4,
  });
  const kept = (sparse.info!.superpixels as Superpixel[][])[0].filter((sp) => sp.weight !== 0);
  assert.ok(kept.length >= 1 && kept.length <= 4, `${kept.length} superpixels kept`);
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
