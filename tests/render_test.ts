/**
 * Render kernels and plugins against matplotlib, Captum and PyTorch references (fixtures made by
 * tools/make_colormap_fixtures.py) and hand-computed values.
 */
import assert from "node:assert/strict";
import { decode } from "fast-png";
import { applyColormap, COLORMAP_NAMES, colormapLut } from "../kernels/colormap.ts";
import {
  cumulativeSumThreshold,
  normalizeAbs,
  normalizeBatch,
  normalizeMinMax,
  normalizeP99,
  normalizeSigned,
  reduceChannels,
} from "../kernels/normalize.ts";
import { decodeNpy } from "../kernels/npy.ts";
import { encodePng } from "../kernels/png_encode.ts";
import { type Tensor, tensor } from "../kernels/tensor.ts";
import { upsampleBilinear, upsampleNearest } from "../kernels/upsample.ts";
import { ParamError } from "../pipeline/errors.ts";
import type { RenderInput } from "../pipeline/plugin.ts";
import type { Batch, Explanation, Model, OutputFile, RgbaImage } from "../pipeline/types.ts";
import { gridLayout, gridParams, gridRender } from "../plugins/render/grid.ts";
import { heatmapParams, heatmapRender } from "../plugins/render/heatmap.ts";
import { jsonParams, jsonRender } from "../plugins/render/json.ts";
import { npyParams, npyRender } from "../plugins/render/npy.ts";

const FIXTURES = new URL("./fixtures/render/", import.meta.url);

function fixture<T>(name: string): T {
  return JSON.parse(Deno.readTextFileSync(new URL(name, FIXTURES))) as T;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number) {
  assert.equal(actual.length, expected.length);
  let worst = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) [worst, at] = [d, i];
  }
  assert.ok(
    worst <= tol,
    `max error ${worst} at ${at}: ${actual[at]} vs ${expected[at]} (tolerance ${tol})`,
  );
}

/** Deterministic pseudo-random numbers in [-1, 1). */
function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

// ---------------------------------------------------------------- colormaps

interface ColormapFixture {
  samples: number[];
  maps: Record<string, { lut: number[][]; rgba: number[][] }>;
}

Deno.test("colormap LUTs equal matplotlib's", () => {
  const fx = fixture<ColormapFixture>("colormaps.json");
  assert.deepEqual(Object.keys(fx.maps).sort(), [...COLORMAP_NAMES].sort());
  for (const name of COLORMAP_NAMES) {
    assert.deepEqual([...colormapLut(name)], fx.maps[name].lut.flat(), name);
  }
});

Deno.test("applyColormap picks the entries matplotlib's cmap(x) picks", () => {
  const fx = fixture<ColormapFixture>("colormaps.json");
  const samples = Float32Array.from(fx.samples);
  for (const name of COLORMAP_NAMES) {
    assert.deepEqual([...applyColormap(samples, name)], fx.maps[name].rgba.flat(), name);
  }
  assert.deepEqual([...applyColormap(Float32Array.of(NaN), "jet")], [0, 0, 0, 0]);
});

// ---------------------------------------------------------------- normalizations

Deno.test("minmax, abs and signed normalizations on hand-computed values", () => {
  assert.deepEqual([...normalizeMinMax(Float32Array.of(1, 3, 5, 2))], [0, 0.5, 1, 0.25]);
  assert.deepEqual([...normalizeMinMax(Float32Array.of(7, 7))], [0, 0]);
  assert.deepEqual([...normalizeAbs(Float32Array.of(-4, 2, 1, 0))], [1, 0.5, 0.25, 0]);
  assert.deepEqual([...normalizeAbs(Float32Array.of(0, 0))], [0, 0]);
  assert.deepEqual([...normalizeSigned(Float32Array.of(-4, 2, 1, 0))], [0, 0.75, 0.625, 0.5]);
  assert.deepEqual([...normalizeSigned(Float32Array.of(0, 0))], [0.5, 0.5]);
});

Deno.test("p99 clips at Captum's cumulative-sum threshold", () => {
  // |x| sorted: 0, 0.5, 300 ones, 2; total 302.5; 99% of it (299.475) is reached at the 299th
  // one, so the threshold is 1: the 2 is an outlier clipped to 1, and 0.5 stays 0.5.
  const x = new Float32Array(303);
  x[1] = 0.5;
  x[2] = -2;
  for (let i = 3; i < 303; i++) x[i] = i % 2 ? 1 : -1;
  assert.equal(cumulativeSumThreshold(x.map(Math.abs), 99), 1);
  const y = normalizeP99(x);
  assert.deepEqual([y[0], y[1], y[2], y[3], y[4]], [0, 0.5, 1, 1, 1]);
  // A large share of the mass in one value is not an outlier: [1, 2, 3, 4, 90] keeps 90.
  assert.equal(cumulativeSumThreshold(Float32Array.of(90, 1, 4, 3, 2), 99), 90);
  assert.deepEqual([...normalizeP99(new Float32Array(3))], [0, 0, 0]);

  const fx = fixture<{ input: number[]; threshold: number; expected: number[] }[]>("p99.json");
  for (const c of fx) {
    const input = Float32Array.from(c.input);
    assert.equal(
      Math.fround(cumulativeSumThreshold(input.map(Math.abs), 99)),
      Math.fround(c.threshold),
    );
    assertClose(normalizeP99(input), c.expected, 1e-6);
  }
});

Deno.test("normalizeBatch scales each image on its own", () => {
  const t = normalizeBatch(tensor(Float32Array.of(2, 4, 10, 30), [2, 2]), "minmax");
  assert.deepEqual([...t.data], [0, 1, 0, 1]);
  assert.deepEqual(t.dims, [2, 2]);
});

Deno.test("channel reductions on hand-computed values", () => {
  // Pixel 0 has channels (1, -3), pixel 1 has (-2, 1).
  const t = tensor(Float32Array.of(1, -2, -3, 1), [1, 2, 1, 2]);
  assert.deepEqual([...reduceChannels(t, "sum").data], [-2, -1]);
  assert.deepEqual([...reduceChannels(t, "abs-sum").data], [4, 3]);
  assert.deepEqual([...reduceChannels(t, "max-abs").data], [3, 2]);
  assert.deepEqual(reduceChannels(t, "sum").dims, [1, 1, 1, 2]);
});

// ---------------------------------------------------------------- upsampling

interface UpsampleCase {
  name: string;
  mode: "bilinear" | "nearest";
  alignCorners: boolean;
  dims: number[];
  size: [number, number];
  input: number[];
  rows: number[];
  cols: number[];
  expected: number[];
}

Deno.test("upsampling equals torch.nn.functional.interpolate", () => {
  const cases = fixture<UpsampleCase[]>("upsample.json");
  assert.ok(cases.length >= 8);
  for (const c of cases) {
    const x = tensor(Float32Array.from(c.input), c.dims);
    const y = c.mode === "bilinear"
      ? upsampleBilinear(x, c.size, { alignCorners: c.alignCorners })
      : upsampleNearest(x, c.size);
    const [n, ch] = c.dims;
    const [h, w] = c.size;
    assert.deepEqual(y.dims, [n, ch, h, w], c.name);
    const picked: number[] = [];
    for (let p = 0; p < n * ch; p++) {
      for (const r of c.rows) for (const k of c.cols) picked.push(y.data[(p * h + r) * w + k]);
    }
    try {
      assertClose(picked, c.expected, 1e-5);
    } catch (e) {
      throw new Error(`${c.name}: ${(e as Error).message}`);
    }
  }
});

Deno.test("nearest upsampling by a whole factor replicates blocks", () => {
  const y = upsampleNearest(tensor(Float32Array.of(1, 2, 3, 4), [1, 1, 2, 2]), [4, 4]);
  assert.deepEqual([...y.data], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
});

// ---------------------------------------------------------------- render plugins

const model = {
  name: "stub.onnx",
  backend: { name: "wasm", reason: "test stub" },
  labels: ["cat", "dog", "fox"],
} as unknown as Model;

function photo(width: number, height: number, seed: number): RgbaImage {
  const r = random(width * height * 4, seed);
  const data = Uint8ClampedArray.from(r, (v) => Math.floor((v + 1) * 128));
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  return { width, height, data };
}

function explanation(method: string, map: Tensor, extra: Partial<Explanation> = {}): Explanation {
  return {
    method,
    targets: Array.from({ length: map.dims[0] }, (_, i) => i % 3),
    map,
    range: [0, 1],
    timings: { total: 1.5 },
    backend: "wasm",
    space: "layer",
    ...extra,
  };
}

function input(batch: Batch, explanations: Explanation[]): RenderInput {
  return {
    batch,
    explanations,
    predictions: batch.names.map((_, i) => [
      { index: i, label: model.labels![i], score: 9, probability: 0.7 },
      { index: 2, label: "fox", score: 4, probability: 0.2 },
      { index: (i + 1) % 2, label: model.labels![(i + 1) % 2], score: 1, probability: 0.1 },
    ]),
    model,
  };
}

function byPath(files: OutputFile[]): Map<string, Uint8Array> {
  return new Map(files.map((f) => [f.path, f.bytes]));
}

function pixel(png: Uint8Array, x: number, y: number): number[] {
  const img = decode(png);
  assert.equal(img.channels, 4);
  const i = (y * img.width + x) * 4;
  return [...img.data.subarray(i, i + 4)];
}

Deno.test("encodePng round-trips through fast-png decode", () => {
  const img = photo(5, 3, 1);
  const back = decode(encodePng(img, { text: { a: "b" } }));
  assert.deepEqual([back.width, back.height, back.depth, back.channels], [5, 3, 8, 4]);
  assert.deepEqual([...back.data], [...img.data]);
  assert.equal(back.text.a, "b");
});

Deno.test("npy render round-trips maps per image and per batch", async () => {
  const map = tensor(random(2 * 3 * 4 * 5, 7), [2, 3, 4, 5]);
  const batch: Batch = {
    tensor: tensor(new Float32Array(2 * 3 * 4 * 5), [2, 3, 4, 5]),
    names: ["a", "b"],
  };
  const exps = [
    explanation("saliency", map, { space: "input" }),
    explanation("saliency", map),
  ];
  const files = byPath(await npyRender.run(input(batch, exps), npyParams.parse({})));
  assert.deepEqual([...files.keys()].sort(), [
    "a_saliency.npy",
    "a_saliency_2.npy",
    "b_saliency.npy",
    "b_saliency_2.npy",
  ]);
  const b = decodeNpy(files.get("b_saliency.npy")!);
  assert.deepEqual(b.dims, [1, 3, 4, 5]);
  assert.deepEqual([...b.data], [...map.data.subarray(60)]);

  const all = await npyRender.run(
    input(batch, exps.slice(0, 1)),
    npyParams.parse({ batch: true }),
  );
  assert.deepEqual(all.map((f) => f.path), ["saliency.npy"]);
  const whole = decodeNpy(all[0].bytes);
  assert.deepEqual(whole.dims, [2, 3, 4, 5]);
  assert.deepEqual([...whole.data], [...map.data]);
});

Deno.test("heatmap upsamples a layer map and blends it over the photo", async () => {
  const [w, h] = [12, 16];
  const images = [photo(w, h, 1), photo(w, h, 2)];
  const batch: Batch = {
    tensor: tensor(new Float32Array(2 * 3 * h * w), [2, 3, h, w]),
    names: ["cat", "dog"],
    images,
  };
  // Bilinear upsampling keeps corner pixels exact, so the corners carry the max (→ 1) and the
  // min (→ 0) of each image's map.
  const cam = random(2 * 4 * 3, 3).map((v) => v * 0.5);
  cam[0] = 2;
  cam[11] = -1;
  cam[12] = 5;
  cam[23] = -3;
  const exps = [
    explanation("gradcam", tensor(cam, [2, 1, 4, 3])),
    explanation("features", tensor(new Float32Array(2 * 8 * 4 * 3), [2, 8, 4, 3])),
  ];
  const params = heatmapParams.parse({ alpha: 0.3 });
  const files = byPath(await heatmapRender.run(input(batch, exps), params));
  assert.deepEqual([...files.keys()], ["cat_gradcam.png", "dog_gradcam.png"]);
  const lut = fixture<ColormapFixture>("colormaps.json").maps.jet.lut;
  for (const [i, name] of ["cat", "dog"].entries()) {
    const png = files.get(`${name}_gradcam.png`)!;
    const img = decode(png);
    assert.deepEqual([img.width, img.height], [w, h]);
    for (const [x, y, colour] of [[0, 0, lut[255]], [w - 1, h - 1, lut[0]]] as const) {
      const p = images[i].data.subarray((y * w + x) * 4);
      const expected = [0, 1, 2].map((c) => Math.round(0.7 * p[c] + 0.3 * colour[c]));
      assert.deepEqual(pixel(png, x, y), [...expected, 255], `${name} (${x},${y})`);
    }
  }
});

Deno.test("heatmap reduces input-space maps and draws them without a photo", async () => {
  const batch: Batch = { tensor: tensor(new Float32Array(3 * 2 * 3), [1, 3, 2, 3]), names: ["x"] };
  // Channel abs-sums per pixel: 6, 3, 0, 1.5, 4.5, 3 → abs-normalized by 6.
  const map = Float32Array.of(1, 1, 0, 0.5, 1.5, 1, 2, -1, 0, -0.5, 1.5, 1, -3, 1, 0, 0.5, 1.5, 1);
  const files = await heatmapRender.run(
    input(batch, [explanation("ig", tensor(map, [1, 3, 2, 3]), { space: "input" })]),
    heatmapParams.parse({ normalize: "abs", colormap: "gray" }),
  );
  assert.deepEqual(files.map((f) => f.path), ["x_ig.png"]);
  const img = decode(files[0].bytes);
  assert.deepEqual([img.width, img.height], [3, 2]);
  const grays = [6, 3, 0, 1.5, 4.5, 3].map((v) => Math.min(255, Math.floor(v / 6 * 256)));
  const lut = fixture<ColormapFixture>("colormaps.json").maps.gray.lut;
  assert.deepEqual([...img.data], grays.flatMap((k) => [...lut[k], 255]));
});

Deno.test("heatmap params: defaults, strictness and method errors", async () => {
  assert.deepEqual(heatmapParams.parse({}), { normalize: "minmax", alpha: 0.5 });
  assert.equal(heatmapParams.safeParse({ colour: "jet" }).success, false);
  assert.equal(heatmapParams.safeParse({ colormap: "parula" }).success, false);
  const batch: Batch = { tensor: tensor(new Float32Array(4), [1, 1, 2, 2]), names: ["x"] };
  const exps = [
    explanation("gradcam", tensor(new Float32Array(4), [1, 1, 2, 2])),
    explanation("acts", tensor(new Float32Array(8), [1, 2, 2, 2])),
  ];
  await assert.rejects(
    heatmapRender.run(input(batch, exps), heatmapParams.parse({ methods: ["gradcm"] })),
    (e: unknown) =>
      e instanceof ParamError && e.key === "methods" && /did you mean 'gradcam'/.test(e.message),
  );
  await assert.rejects(
    heatmapRender.run(input(batch, exps), heatmapParams.parse({ methods: ["acts"] })),
    (e: unknown) => e instanceof ParamError && /grid render/.test(e.message),
  );
  await assert.rejects(
    heatmapRender.run(input(batch, exps), heatmapParams.parse({ overlay: true })),
    (e: unknown) => e instanceof ParamError && e.key === "overlay",
  );
});

Deno.test("grid tiles the most active channels with the right geometry", async () => {
  const [c, h, w] = [10, 7, 5];
  const data = random(c * h * w, 11);
  // Channel 6 gets the highest mean, channel 2 the second highest.
  for (let i = 0; i < h * w; i++) {
    data[6 * h * w + i] += 3;
    data[2 * h * w + i] += 2;
  }
  const batch: Batch = {
    tensor: tensor(new Float32Array(3 * 28 * 20), [1, 3, 28, 20]),
    names: ["x"],
  };
  const exps = [
    explanation("acts", tensor(data, [1, c, h, w]), { layer: "conv1" }),
    explanation("gradcam", tensor(new Float32Array(h * w), [1, 1, h, w])),
  ];
  const files = await gridRender.run(input(batch, exps), gridParams.parse({}));
  assert.deepEqual(files.map((f) => f.path), ["x_acts_grid.png"]);
  const img = decode(files[0].bytes);
  // 10 tiles → 4 columns × 3 rows; factor ceil(64 / 5) = 13 → 91×65 cells; 2 px gaps.
  const layout = gridLayout(10, [h, w]);
  assert.deepEqual(
    [layout.columns, layout.rows, layout.cellHeight, layout.cellWidth],
    [4, 3, 91, 65],
  );
  assert.deepEqual([img.width, img.height], [4 * 65 + 5 * 2, 3 * 91 + 4 * 2]);
  const order = img.text.channels.split(",").map(Number);
  assert.deepEqual(order.slice(0, 2), [6, 2]);
  assert.deepEqual([...order].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const at = (x: number, y: number) => {
    const i = (y * img.width + x) * 4;
    return [...img.data.subarray(i, i + 4)];
  };
  assert.deepEqual(at(0, 0), [255, 255, 255, 255]);
  assert.deepEqual(at(img.width - 3, img.height - 3), [255, 255, 255, 255]); // unused 12th cell
  // Tile 1 (channel 2): activation (row 3, col 4) fills the 13×13 block at x + 52, y + 39.
  const lut = fixture<ColormapFixture>("colormaps.json").maps.viridis.lut;
  const ch = data.subarray(2 * h * w, 3 * h * w);
  const norm = normalizeMinMax(ch)[3 * w + 4];
  const k = Math.min(255, Math.floor(norm * 256));
  const [x0, y0] = [2 + 65 + 2 + 4 * 13, 2 + 3 * 13];
  assert.deepEqual(at(x0, y0), [...lut[k], 255]);
  assert.deepEqual(at(x0 + 12, y0 + 12), [...lut[k], 255]);

  const picked = await gridRender.run(
    input(batch, exps),
    gridParams.parse({ methods: ["acts"], channels: [3, 1], columns: 1, cell: 20, padding: 0 }),
  );
  const small = decode(picked[0].bytes);
  assert.deepEqual([small.width, small.height], [Math.round(20 * 5 / 7), 40]);
  assert.equal(small.text.channels, "3,1");
  await assert.rejects(
    gridRender.run(input(batch, exps), gridParams.parse({ channels: [10] })),
    (e: unknown) => e instanceof ParamError && e.key === "channels",
  );
});

Deno.test("json render writes predictions and JSON-safe explanation facts", async () => {
  const batch: Batch = { tensor: tensor(new Float32Array(2 * 4), [2, 1, 2, 2]), names: ["a", "b"] };
  const map = tensor(Float32Array.of(1, 2, 3, 4, -5, 6, 7, 8), [2, 1, 2, 2]);
  const exps = [
    explanation("gradcam", map, {
      layer: "conv",
      info: { delta: 0.25, weights: new Float32Array(3), nested: { big: 10n, bad: NaN } },
    }),
  ];
  const files = await jsonRender.run(input(batch, exps), jsonParams.parse({ topk: 2 }));
  assert.deepEqual(files.map((f) => f.path), ["results.json"]);
  const json = JSON.parse(new TextDecoder().decode(files[0].bytes));
  assert.equal(json.model.name, "stub.onnx");
  assert.deepEqual(json.images.map((i: { name: string }) => i.name), ["a", "b"]);
  assert.deepEqual(json.images[1].predictions, [
    { index: 1, label: "dog", score: 9, probability: 0.7 },
    { index: 2, label: "fox", score: 4, probability: 0.2 },
  ]);
  assert.deepEqual(json.images[1].explanations[0], {
    method: "gradcam",
    target: 1,
    targetLabel: "dog",
    layer: "conv",
    shape: [1, 1, 2, 2],
    range: [-5, 8],
    timings: { total: 1.5 },
    backend: "wasm",
    space: "layer",
    info: { delta: 0.25, nested: { big: 10, bad: null } },
  });
  const renamed = await jsonRender.run(input(batch, exps), jsonParams.parse({ file: "out.json" }));
  assert.equal(renamed[0].path, "out.json");
});
