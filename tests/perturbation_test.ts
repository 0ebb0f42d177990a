/**
 * RISE and Score-CAM against references: RISE's masks against the authors' generator
 * (scikit-image resize, fixtures from tools/make_segmentation_fixtures.py), both methods against
 * naive one-input-at-a-time loops on the emotion model, the deletion and insertion curves of
 * pipeline/metrics.ts against closed forms on a linear model, and the deletion metric (Petsiuk et
 * al. 2018) of LIME and RISE maps against random pixel orders on the two bundled faces.
 */
import assert from "node:assert/strict";
import "../plugins/mod.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { drawMasks, renderMask } from "../plugins/method/rise.ts";
import { Random } from "../kernels/random.ts";
import { batchItem, gatherBatch, type Tensor, tensor } from "../kernels/tensor.ts";
import { defaultLayer } from "../pipeline/layers.ts";
import {
  deletionAuc,
  deletionCurve,
  insertionCurve,
  randomOrder,
  randomSegmentOrder,
  saliencyOrder,
} from "../pipeline/metrics.ts";
import type { Model } from "../pipeline/types.ts";
import {
  EMOTION,
  fixture,
  linearModel,
  maxAbsError,
  maxRelativeError,
  methodInput,
  runMethod,
} from "./_helpers.ts";

const faces = () => gatherBatch(fixture("tests/fixtures/emotion/inputs.npy"), [0, 1]);

function softmax(row: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(row));
  const e = Array.from(row, (v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

async function probabilities(model: Model, x: Tensor): Promise<number[][]> {
  const out = (await model.run(x))[model.outputName];
  const k = out.dims[1];
  return Array.from(
    { length: out.dims[0] },
    (_, i) => softmax(out.data.subarray(i * k, (i + 1) * k)),
  );
}

Deno.test("RISE masks equal the authors' generator (scikit-image resize, random crop)", () => {
  const cells = fixture("tests/fixtures/segmentation/rise_cells.npy");
  const shifts = fixture("tests/fixtures/segmentation/rise_shifts.npy").data;
  const masks = fixture("tests/fixtures/segmentation/rise_masks.npy");
  const [count, grid] = cells.dims;
  const [, h, w] = masks.dims;
  for (let i = 0; i < count; i++) {
    const draw = {
      cells: Uint8Array.from(cells.data.subarray(i * grid * grid, (i + 1) * grid * grid)),
      shift: [shifts[2 * i], shifts[2 * i + 1]] as [number, number],
    };
    const ours = renderMask(draw, { grid, height: h, width: w });
    assert.ok(
      maxAbsError(ours, masks.data.subarray(i * h * w, (i + 1) * h * w)) < 1e-6,
      `mask ${i}`,
    );
  }
});

Deno.test("RISE equals a naive loop over masks on the emotion model", async () => {
  const model = await openModel(Deno.readFileSync(EMOTION), { backend: "wasm" });
  try {
    const x = faces();
    const [, c, h, w] = x.dims;
    const params = { masks: 40, grid: 4, p: 0.5, seed: 3, internal_batch: 7 };
    const e = await runMethod("rise", await methodInput(model, x), params);
    const draws = drawMasks(new Random(3), { count: 40, grid: 4, p: 0.5, height: h, width: w });
    for (let i = 0; i < 2; i++) {
      const target = e.targets[i];
      const ref = new Float64Array(h * w);
      for (const draw of draws) {
        const m = renderMask(draw, { grid: 4, height: h, width: w });
        const xi = Float32Array.from(batchItem(x, i).data, (v, q) => v * m[q % (h * w)]);
        const [prob] = await probabilities(model, tensor(xi, [1, c, h, w]));
        for (let q = 0; q < h * w; q++) ref[q] += prob[target] * m[q] / (40 * 0.5);
      }
      const ours = batchItem(e.map, i).data.subarray(0, h * w);
      assert.ok(maxRelativeError(ours, ref) < 1e-4);
    }
  } finally {
    await model.dispose();
  }
});

Deno.test("Score-CAM equals a naive per-channel loop on the emotion model", async () => {
  const model = await openModel(Deno.readFileSync(EMOTION), { backend: "wasm" });
  try {
    const x = faces();
    const [, c, h, w] = x.dims;
    const layer = await defaultLayer(model);
    const e = await runMethod("score-cam", await methodInput(model, x), { internal_batch: 16 });
    assert.equal(e.layer, layer);
    const acts = (await model.run(x, { outputs: [layer] }))[layer];
    const [, k, lh, lw] = acts.dims;
    assert.deepEqual(e.map.dims, [2, 1, lh, lw]);
    // Independent bilinear resize (half-pixel centres, edges clamped).
    const at = (src: Float32Array, yy: number, xx: number) => {
      const sy = Math.max((yy + 0.5) * lh / h - 0.5, 0),
        sx = Math.max((xx + 0.5) * lw / w - 0.5, 0);
      const y0 = Math.floor(sy), x0 = Math.floor(sx);
      const y1 = Math.min(y0 + 1, lh - 1), x1 = Math.min(x0 + 1, lw - 1);
      const fy = sy - y0, fx = sx - x0;
      return (src[y0 * lw + x0] * (1 - fx) + src[y0 * lw + x1] * fx) * (1 - fy) +
        (src[y1 * lw + x0] * (1 - fx) + src[y1 * lw + x1] * fx) * fy;
    };
    for (let i = 0; i < 2; i++) {
      const ref = new Float64Array(lh * lw);
      for (let ch = 0; ch < k; ch++) {
        const a = acts.data.subarray((i * k + ch) * lh * lw, (i * k + ch + 1) * lh * lw);
        const up = new Float64Array(h * w);
        for (let yy = 0; yy < h; yy++) {
          for (let xx = 0; xx < w; xx++) up[yy * w + xx] = at(a, yy, xx);
        }
        const lo = Math.min(...up), hi = Math.max(...up);
        const xi = new Float32Array(c * h * w);
        batchItem(x, i).data.forEach((v, q) => {
          xi[q] = hi > lo ? v * (up[q % (h * w)] - lo) / (hi - lo) : 0;
        });
        const [prob] = await probabilities(model, tensor(xi, [1, c, h, w]));
        for (let q = 0; q < lh * lw; q++) ref[q] += prob[e.targets[i]] * a[q];
      }
      for (let q = 0; q < lh * lw; q++) ref[q] = Math.max(ref[q], 0);
      assert.ok(maxRelativeError(batchItem(e.map, i).data, ref) < 1e-4);
    }
  } finally {
    await model.dispose();
  }
});

Deno.test("deletion and insertion curves equal their closed forms on a linear model", async () => {
  const [c, h, w] = [2, 5, 7];
  const plane = h * w;
  const random = new Random(11);
  const x = random.fillNormal(new Float32Array(c * plane));
  const v = random.fillNormal(new Float32Array(c * plane));
  const model = linearModel(v, [c, h, w]);
  const input = tensor(x, [1, c, h, w]);
  const map = random.fillNormal(new Float32Array(c * plane));
  const order = saliencyOrder(map, plane);
  // Channels are summed per pixel before ranking.
  const summed = Array.from({ length: plane }, (_, p) => map[p] + map[plane + p]);
  for (let q = 1; q < plane; q++) assert.ok(summed[order[q - 1]] >= summed[order[q]]);
  const steps = 6, per = Math.ceil(plane / steps);
  for (const fill of ["zero", "mean", 0.5] as const) {
    const sub = (ch: number) =>
      fill === "zero"
        ? 0
        : fill === "mean"
        ? x.subarray(ch * plane, (ch + 1) * plane).reduce((a, b) => a + b, 0) / plane
        : fill;
    const score = (removed: Set<number>) => {
      let s = 0;
      for (let ch = 0; ch < c; ch++) {
        for (let p = 0; p < plane; p++) {
          s += v[ch * plane + p] * (removed.has(p) ? sub(ch) : x[ch * plane + p]);
        }
      }
      return s;
    };
    const del = await deletionCurve(model, input, { map, target: 0, steps, fill, output: "logit" });
    const ins = await insertionCurve(model, input, {
      order,
      target: 0,
      steps,
      fill,
      output: "logit",
    });
    assert.equal(del.scores.length, steps + 1);
    let trap = 0;
    for (let k = 0; k <= steps; k++) {
      const gone = new Set(order.slice(0, Math.min(k * per, plane)));
      const kept = new Set(order.filter((p) => !gone.has(p)));
      assert.ok(Math.abs(del.scores[k] - score(gone)) < 1e-4, `${fill} deletion ${k}`);
      assert.ok(Math.abs(ins.scores[k] - score(kept)) < 1e-4, `${fill} insertion ${k}`);
      assert.equal(del.fractions[k], gone.size / plane);
      trap += (k === 0 || k === steps ? 0.5 : 1) * score(gone) / steps;
    }
    assert.ok(Math.abs(del.auc - trap) < 1e-4);
  }
  // Probabilities by default: class 0 of a two-class softmax is σ(2s).
  const p = await deletionCurve(model, input, { order, target: 0, steps });
  const s0 = x.reduce((a, xi, q) => a + xi * v[q], 0);
  assert.ok(Math.abs(p.scores[0] - 1 / (1 + Math.exp(-2 * s0))) < 1e-5);
  await assert.rejects(
    () =>
      deletionCurve(model, tensor(new Float32Array(2 * c * plane), [2, c, h, w]), {
        map,
        target: 0,
      }),
    /Cannot measure a deletion curve: input shape is \[2,2,5,7\], expected \[1,C,H,W\]/,
  );
  await assert.rejects(() => insertionCurve(model, input, { target: 0 }), /no `map` or `order`/);
  // Random orders are permutations; segment orders keep each segment's pixels together.
  const perm = randomOrder(plane, new Random(1));
  assert.deepEqual([...perm].sort((a, b) => a - b), Array.from({ length: plane }, (_, q) => q));
  const labels = Int32Array.from({ length: plane }, (_, q) => Math.floor(q / 5) % 4);
  const seg = randomSegmentOrder(labels, { count: 4, random: new Random(2) });
  assert.equal(seg.length, plane);
  let changes = 0;
  for (let q = 1; q < plane; q++) if (labels[seg[q]] !== labels[seg[q - 1]]) changes++;
  assert.equal(changes, 3);
});

Deno.test("deletion: LIME and RISE orders drop the face's class faster than random orders", async () => {
  const model = await openModel(Deno.readFileSync(EMOTION), { backend: "wasm" });
  try {
    const x = faces();
    const [, , h, w] = x.dims;
    const plane = h * w;
    const input = await methodInput(model, x);
    // LIME's quickshift kernel of 4 is sized for 224×224 photos and leaves 5 segments on a
    // 64×64 face; kernel 2 gives ~15, the granularity LIME has on photos.
    const lime = await runMethod("lime", input, { samples: 200, seed: 0, kernel_size: 2 });
    const rise = await runMethod("rise", input, { masks: 300, seed: 0 });
    const random = new Random(7);
    const sums = { lime: 0, rise: 0, random: 0 };
    const report: string[] = [];
    for (let i = 0; i < 2; i++) {
      const xi = batchItem(x, i);
      const target = lime.targets[i];
      // Blur rather than zeros: on this 64×64 model, zeroing scattered pixels (a random order)
      // wrecks the face almost at once, so zero deletion ranks noise, not attributions.
      const auc = (o: { order?: number[]; map?: Float32Array }) =>
        deletionAuc(model, xi, { ...o, target, steps: 16, fill: "blur" });
      const lAuc = await auc({ map: batchItem(lime.map, i).data });
      const rAuc = await auc({ map: batchItem(rise.map, i).data });
      let base = 0;
      for (let t = 0; t < 3; t++) base += await auc({ order: randomOrder(plane, random) }) / 3;
      sums.lime += lAuc / 2;
      sums.rise += rAuc / 2;
      sums.random += base / 2;
      report.push(
        `face ${i}: lime ${lAuc.toFixed(3)} rise ${rAuc.toFixed(3)} random ${base.toFixed(3)}`,
      );
    }
    console.log(`deletion AUC: ${report.join("; ")}`);
    assert.ok(sums.lime < 0.8 * sums.random, report.join("; "));
    assert.ok(sums.rise < 0.8 * sums.random, report.join("; "));
  } finally {
    await model.dispose();
  }
});
