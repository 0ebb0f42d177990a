/**
 * Activation maximization: the FFT against a naive DFT, the Fourier parameterization and the
 * transforms against their transposes, the parameterization's gradient against finite
 * differences, Adam against hand-computed steps, the diversity gradient, seeded reproducibility,
 * and a short end-to-end run on a fixture model whose objective must rise.
 */
import assert from "node:assert/strict";
import "../plugins/mod.ts";
import { Adam } from "../kernels/adam.ts";
import { fft, ifft } from "../kernels/fft.ts";
import {
  fourierScale,
  imageParameterization,
  irfft2d,
  irfft2dAdjoint,
} from "../kernels/fourier_image.ts";
import { Random } from "../kernels/random.ts";
import { tensor } from "../kernels/tensor.ts";
import {
  IDENTITY,
  randomAffine,
  sampleAffine,
  sampleAffineAdjoint,
} from "../kernels/transforms.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { diversityTerm, penalize } from "../plugins/method/activation_max.ts";
import { methodInput, ROOT, runMethod } from "./_helpers.ts";

function randoms(n: number, seed: number): Float32Array {
  return new Random(seed).fillNormal(new Float32Array(n));
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

Deno.test("fft and ifft match a naive DFT for mixed-radix and prime lengths", () => {
  for (const n of [1, 2, 3, 8, 12, 13, 97, 224]) {
    const re = Float64Array.from(randoms(n, n)), im = Float64Array.from(randoms(n, n + 1));
    const fr = re.slice(), fi = im.slice();
    fft(fr, fi);
    let err = 0;
    for (let k = 0; k < n; k++) {
      let a = 0, b = 0;
      for (let j = 0; j < n; j++) {
        const t = (-2 * Math.PI * k * j) / n;
        a += re[j] * Math.cos(t) - im[j] * Math.sin(t);
        b += re[j] * Math.sin(t) + im[j] * Math.cos(t);
      }
      err = Math.max(err, Math.abs(a - fr[k]), Math.abs(b - fi[k]));
    }
    assert.ok(err < 1e-9 * n, `n=${n}: fft error ${err}`);
    ifft(fr, fi);
    for (let j = 0; j < n; j++) assert.ok(Math.abs(fr[j] / n - re[j]) < 1e-12, `n=${n} ifft`);
  }
});

Deno.test("irfft2d matches numpy's irfft2 definition and its adjoint is its transpose", () => {
  for (const [h, w] of [[6, 8], [5, 7], [4, 1]]) {
    const wf = (w % 2 === 0 ? w : w + 1) / 2 + 1, wi = 2 * (wf - 1);
    const spec = randoms(h * wf * 2, h * w);
    const out = new Float64Array(h * w);
    irfft2d(spec, out, { h, w });
    // Naive: x = (1/hw')·Σ_ky Σ_kx c_kx·Re(X e^{2πi(ky·y/h + kx·x/w')}), c = 1 on the DC and
    // Nyquist columns (whose imaginary part after the first ifft numpy's c2r drops).
    let err = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let v = 0;
        for (let ky = 0; ky < h; ky++) {
          for (let kx = 0; kx < wf; kx++) {
            const edge = kx === 0 || kx === wi / 2;
            const re = spec[(ky * wf + kx) * 2], im = spec[(ky * wf + kx) * 2 + 1];
            const t = 2 * Math.PI * ((ky * y) / h + (kx * x) / wi);
            v += (edge ? 1 : 2) * (re * Math.cos(t) - im * Math.sin(t));
          }
        }
        err = Math.max(err, Math.abs(v / (h * wi) - out[y * w + x]));
      }
    }
    assert.ok(err < 1e-6, `${h}x${w}: irfft2d error ${err}`);
    const g = randoms(h * w, 7);
    const back = new Float64Array(h * wf * 2);
    irfft2dAdjoint(g, back, { h, w });
    const lhs = dot(out, g), rhs = dot(spec, back);
    assert.ok(Math.abs(lhs - rhs) < 1e-9 * (Math.abs(lhs) + 1), `${h}x${w}: ${lhs} vs ${rhs}`);
  }
});

Deno.test("fourierScale is Lucid's 1/max(f, 1/max(h,w)) · sqrt(hw)", () => {
  const s = fourierScale(4, 4);
  assert.equal(s.length, 4 * 3);
  assert.ok(Math.abs(s[0] - 16) < 1e-12); // f = 0 → floor 1/4
  assert.ok(Math.abs(s[1 * 3 + 1] - 4 / Math.hypot(0.25, 0.25)) < 1e-12);
  assert.ok(Math.abs(s[2 * 3 + 2] - 4 / Math.hypot(0.5, 0.5)) < 1e-12);
});

Deno.test("parameterization gradient matches finite differences (fourier and pixel)", () => {
  for (const kind of ["fourier", "pixel"] as const) {
    const h = 6, w = 5;
    const p = imageParameterization({ h, w, kind });
    const theta = randoms(p.size, 3).map((v) => v * 0.3);
    const rgb = new Float32Array(3 * h * w);
    p.forward(theta, rgb);
    const weights = randoms(rgb.length, 4);
    const grad = new Float32Array(p.size);
    p.backward(rgb, weights, grad);
    const dir = randoms(p.size, 5);
    const eps = 1e-2;
    const f = (sign: number) => {
      const t = theta.map((v, i) => v + sign * eps * dir[i]);
      const out = new Float32Array(rgb.length);
      p.forward(t, out);
      return dot(out, weights);
    };
    const fd = (f(1) - f(-1)) / (2 * eps), an = dot(grad, dir);
    assert.ok(Math.abs(fd - an) < 2e-3 * (Math.abs(an) + 1e-3), `${kind}: fd ${fd} vs ${an}`);
  }
});

Deno.test("transform sampling: identity is exact and the adjoint is the transpose", () => {
  const c = 3, h = 20, w = 17;
  const src = randoms(c * h * w, 1);
  const out = new Float32Array(src.length);
  sampleAffine(src, out, { c, h, w, affine: IDENTITY, fill: 0.5 });
  assert.deepEqual(out, src);
  const shifted = new Float32Array(src.length);
  sampleAffine(src, shifted, { c, h, w, affine: { m: [1, 0, 0, 1], t: [1, 0] }, fill: 0.5 });
  assert.equal(shifted[0], src[1]);
  assert.equal(shifted[w - 1], 0.5);
  const random = new Random(2);
  for (let k = 0; k < 5; k++) {
    const affine = randomAffine(random, { h, w });
    sampleAffine(src, out, { c, h, w, affine, fill: 0 });
    const g = randoms(src.length, 10 + k);
    const back = new Float32Array(src.length);
    sampleAffineAdjoint(g, back, { c, h, w, affine });
    const lhs = dot(out, g), rhs = dot(src, back);
    assert.ok(Math.abs(lhs - rhs) < 1e-4 * (Math.abs(lhs) + 1), `${lhs} vs ${rhs}`);
  }
});

Deno.test("Adam takes the hand-computed steps", () => {
  const adam = new Adam(2, { lr: 0.1 });
  const x = Float32Array.of(1, -2);
  adam.step(x, Float32Array.of(0.5, -4));
  // Step 1: m̂ = g, v̂ = g², so each moves by lr·sign(g).
  assert.ok(Math.abs(x[0] - 0.9) < 1e-6 && Math.abs(x[1] + 1.9) < 1e-6);
  adam.step(x, Float32Array.of(1, 0));
  // Step 2, first coordinate: m = 0.9·0.05 + 0.1·1 = 0.145, m̂ = 0.145/0.19;
  // v = 0.999·0.00025 + 0.001·1 = 0.00124975, v̂ = v/0.001999.
  const m = 0.145 / 0.19, v = 0.00124975 / (1 - 0.999 ** 2);
  assert.ok(Math.abs(x[0] - (0.9 - (0.1 * m) / (Math.sqrt(v) + 1e-8))) < 1e-6);
  assert.equal(adam.steps, 2);
});

Deno.test("L1, L2 and total-variation penalty gradients match finite differences", () => {
  const h = 5, w = 4;
  const img = randoms(3 * h * w, 12).map((v) => 0.5 + 0.2 * v);
  const options = { h, w, l1: 0.3, l2: 0.7, tv: 0.2, blur: 0 };
  const g = new Float32Array(img.length);
  penalize(img, g, options);
  const dir = randoms(img.length, 13);
  const eps = 1e-4;
  const f = (s: number) => penalize(img.map((v, i) => v + s * eps * dir[i]), undefined, options);
  const fd = (f(1) - f(-1)) / (2 * eps), an = -dot(g, dir);
  assert.ok(Math.abs(fd - an) < 1e-2 * Math.abs(an), `fd ${fd} vs ${an}`);
  // blur pulls toward the local mean: a lone bright pixel is pushed down.
  const spike = new Float32Array(3 * h * w).fill(0.5);
  spike[7] = 1;
  const gb = new Float32Array(spike.length);
  penalize(spike, gb, { ...options, l1: 0, l2: 0, tv: 0, blur: 1 });
  assert.ok(gb[7] < 0 && gb[6] > 0);
});

Deno.test("diversity gradient matches finite differences", () => {
  const dims = [3, 4, 2, 3];
  const a = randoms(3 * 4 * 6, 9);
  const seed = new Float32Array(a.length);
  diversityTerm(tensor(a, dims), { seed });
  const dir = randoms(a.length, 11);
  const eps = 1e-2;
  const f = (s: number) => diversityTerm(tensor(a.map((v, i) => v + s * eps * dir[i]), dims));
  const fd = (f(1) - f(-1)) / (2 * eps), an = dot(seed, dir);
  assert.ok(Math.abs(fd - an) < 1e-2 * (Math.abs(an) + 1e-3), `fd ${fd} vs ${an}`);
});

Deno.test("activation-max on squeezenet: objective rises, seeded runs repeat", async () => {
  const path = `${ROOT}/tests/fixtures/torch/squeezenet/model.onnx`;
  const model = await openModel(Deno.readFileSync(path), { name: "squeezenet", backend: "wasm" });
  try {
    const x = tensor(new Float32Array(3 * 66 * 66), [1, 3, 66, 66]);
    const input = await methodInput(model, x);
    const params = { objective: "logit", target: 3, steps: 12, seed: 5, lr: 0.1 };
    const a = await runMethod("activation-max", input, params);
    assert.deepEqual(a.map.dims, [1, 3, 66, 66]);
    assert.equal(a.space, "input");
    const info = a.info as { initial: number[]; final: number[]; objective: number[][] };
    assert.equal(info.objective[0].length, 12);
    assert.ok(info.final[0] > 10 * Math.abs(info.initial[0]), `${info.initial} → ${info.final}`);
    assert.ok(info.objective[0][11] > info.objective[0][0]);
    const b = await runMethod("activation-max", input, params);
    assert.deepEqual(b.map.data, a.map.data);
    const c = await runMethod("activation-max", input, { ...params, seed: 6 });
    assert.notDeepEqual(c.map.data, a.map.data);
    // A batch over channels: one image per channel, each raising its own channel.
    const grid = await runMethod("activation-max", input, {
      objective: "channel",
      layer: "/features/features.4/Concat_output_0",
      channels: [1, 3],
      steps: 6,
    });
    assert.deepEqual(grid.map.dims, [2, 3, 66, 66]);
    const g = grid.info as { initial: number[]; final: number[] };
    g.final.forEach((v, r) => assert.ok(v > g.initial[r], `row ${r}: ${g.initial[r]} → ${v}`));
    // Weighted sums, value-dependent terms (layer L2, probability) and diversity run together.
    const mixed = await runMethod("activation-max", input, {
      objective: "neuron",
      layer: "/features/features.4/Concat_output_0",
      channel: 1,
      batch: 2,
      diversity: 10,
      terms: [{ objective: "layer", weight: 0.1 }, { objective: "probability", unit: 2 }],
      steps: 3,
    });
    assert.deepEqual(mixed.map.dims, [2, 3, 66, 66]);
    const m = mixed.info as { objective: number[][] };
    assert.ok(m.objective.flat().every(Number.isFinite) && m.objective[1].length === 3);
    assert.notDeepEqual(
      mixed.map.data.subarray(0, 100),
      mixed.map.data.subarray(3 * 66 * 66, 3 * 66 * 66 + 100),
    );
  } finally {
    await model.dispose();
  }
});

Deno.test("lantern explain --method activation-max needs no --input", async () => {
  const { explain } = await import("../cli/explain.ts");
  const result = await explain({
    model: `${ROOT}/tests/fixtures/torch/squeezenet/model.onnx`,
    input: [],
    method: "activation-max",
    target: "4",
    param: ["steps=2", "channels=3", "parameterization=pixel"],
    out: "unused",
    backend: "wasm",
  });
  const paths = result.files.map((f) => f.path).sort();
  assert.deepEqual(paths, ["activation-max.npy", "activation-max.png", "results.json"]);
  const { decodeNpy } = await import("../kernels/npy.ts");
  const npy = decodeNpy(result.files.find((f) => f.path.endsWith(".npy"))!.bytes, "npy");
  assert.deepEqual(npy.dims, [3, 3, 66, 66]);
  assert.deepEqual(result.explanations[0].targets, [0, 1, 2]);
  // The picture tiles the 3 rows 2×2 with 2 px gaps; its first tile is row 0 un-normalized.
  const { decodeImage } = await import("../kernels/image_decode.ts");
  const png = decodeImage(result.files.find((f) => f.path.endsWith(".png"))!.bytes, "png");
  assert.deepEqual([png.width, png.height], [2 * 68 + 2, 2 * 68 + 2]);
  const [mean, std] = [0.485, 0.229]; // ImageNet red: the fixture has no preprocess metadata.
  const red = Math.round((npy.data[0] * std + mean) * 255);
  assert.ok(Math.abs(png.data[(2 * png.width + 2) * 4] - red) <= 1);
});
