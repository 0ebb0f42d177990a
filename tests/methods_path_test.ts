/**
 * Integrated gradients and SmoothGrad against torch references, IG's axioms (completeness,
 * linearity), baselines, targets, batching, and WebGPU agreement.
 */
import assert from "node:assert/strict";
import "../plugins/mod.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import type { Model } from "../pipeline/types.ts";
import { batchItem, concatBatch, type Tensor, tensor } from "../kernels/tensor.ts";
import { encodeNpy } from "../kernels/npy.ts";
import {
  fixture,
  HAS_MOBILENET,
  hasWebGpu,
  maxAbsError,
  maxRelativeError,
  methodInput,
  MOBILENET,
  ROOT,
  runMethod,
} from "./_helpers.ts";

const FIX = "tests/fixtures/torch";

async function open(name: string, backend: "wasm" | "webgpu" = "wasm"): Promise<Model> {
  const path = name === "pretrained" ? MOBILENET : `${ROOT}/${FIX}/${name}/model.onnx`;
  return await openModel(Deno.readFileSync(path), { name, backend });
}

const manifest = JSON.parse(Deno.readTextFileSync(`${ROOT}/${FIX}/manifest.json`)) as {
  models: { name: string; targets: number[] }[];
};
const targetsOf = (name: string) => manifest.models.find((m) => m.name === name)!.targets;

for (const name of ["mobilenet_v3_small", "efficientnet"]) {
  Deno.test(`integrated gradients and SmoothGrad match torch on ${name}`, async () => {
    const model = await open(name);
    const input = await methodInput(model, fixture(`${FIX}/${name}/input.npy`));
    const target = targetsOf(name);
    const report: string[] = [];
    for (
      const [method, params, ref] of [
        ["integrated-gradients", { steps: 16, rule: "gausslegendre" }, "ig_gausslegendre16"],
        ["integrated-gradients", { steps: 16, rule: "riemann_trapezoid" }, "ig_trapezoid16"],
        ["smoothgrad", { samples: 8, sigma: 0.15, seed: 3 }, "smoothgrad_n8_s015_seed3"],
        [
          "smoothgrad",
          { samples: 8, sigma: 0.15, seed: 3, variant: "smoothgrad_sq" },
          "smoothgrad_sq_n8_s015_seed3",
        ],
        [
          "smoothgrad",
          { samples: 8, sigma: 0.15, seed: 3, variant: "vargrad" },
          "vargrad_n8_s015_seed3",
        ],
      ] as const
    ) {
      const result = await runMethod(method, input, { target, internal_batch: 5, ...params });
      const err = maxRelativeError(result.map.data, fixture(`${FIX}/${name}/${ref}.npy`).data);
      report.push(`${ref} ${err.toExponential(1)}`);
      assert.ok(err <= 1e-4, `${ref}: ${err}`);
    }
    console.log(`${name}: ${report.join(", ")}`);
    await model.dispose();
  });
}

Deno.test("IG completeness gap is under 1% at 64 Gauss-Legendre steps on smooth nets", async () => {
  // Smooth activations (SiLU, GELU) make the path integrand smooth, so Gauss-Legendre converges
  // and the gap measures the implementation. ReLU nets' integrands have kinks along the path: on
  // the random-weight ReLU fixtures torch's own 64-point IG leaves gaps of 1–280%.
  for (const name of ["efficientnet", "convnext", "convnext_opset13"]) {
    const model = await open(name);
    const input = await methodInput(model, fixture(`${FIX}/${name}/input.npy`));
    const result = await runMethod("integrated-gradients", input, {
      steps: 64,
      internal_batch: 32,
    });
    const rel = result.info!.delta_relative as number[];
    console.log(`${name}: completeness gap ${rel.map((r) => r.toExponential(1)).join(", ")}`);
    for (const r of rel) assert.ok(r <= 0.01, `${name}: gap ${r}`);
    await model.dispose();
  }
});

Deno.test({
  name: "IG on the pretrained MobileNetV2 equals torch's, completeness gap included",
  ignore: !HAS_MOBILENET,
}, async () => {
  // The integrand of this ReLU6 net is rough: torch's own float64 IG at 64 Gauss-Legendre points
  // leaves a 3.2% gap (128 points: 0.5%). Lantern must reproduce torch, gap and all.
  const model = await open("pretrained");
  const x = batchItem(fixture(`${FIX}/imagenet_mobilenet_v2/input.npy`), 0);
  const input = await methodInput(model, x);
  const result = await runMethod("integrated-gradients", input, {
    target: 285,
    steps: 64,
    internal_batch: 32,
  });
  const reference = fixture(`${FIX}/imagenet_mobilenet_v2/ig_gausslegendre64.npy`);
  const err = maxRelativeError(result.map.data, reference.data);
  let refSum = 0, sum = 0;
  for (let i = 0; i < reference.data.length; i++) {
    refSum += reference.data[i];
    sum += result.map.data[i];
  }
  const gap = (result.info!.delta_relative as number[])[0];
  console.log(
    `pretrained IG(64): max rel. error ${err.toExponential(1)}, Σ ${sum.toFixed(4)} vs torch ${
      refSum.toFixed(4)
    }, gap ${gap.toFixed(4)}`,
  );
  assert.ok(err <= 5e-3, `IG vs torch ${err}`); // float32 mask flips at ReLU6 bounds, as for saliency
  assert.ok(Math.abs(sum - refSum) <= 1e-3 * Math.abs(refSum), `Σ ${sum} vs ${refSum}`);
  await model.dispose();
});

Deno.test("IG is linear in the target and every rule converges to the same integral", async () => {
  const model = await open("squeezenet");
  const input = await methodInput(model, fixture(`${FIX}/squeezenet/input.npy`));
  const [a, b] = [3, 7];
  const ig = async (target: number, rule = "gausslegendre", steps = 32) =>
    (await runMethod("integrated-gradients", input, { target, rule, steps })).map.data;
  // Linearity: IG of 2·f_a − f_b equals 2·IG(f_a) − IG(f_b); the left side is integrated here
  // with the kit's gradients() and an arbitrary seed, the right side by the method.
  const { gradients } = await import("../pipeline/gradients.ts");
  const { quadrature } = await import("../kernels/quadrature.ts");
  const x = input.batch.tensor;
  const { alphas, weights } = quadrature("gausslegendre", 32);
  const seed = new Float32Array(10);
  seed[a] = 2;
  seed[b] = -1;
  const points = concatBatch(alphas.map((al) => tensor(x.data.map((v) => v * al), x.dims)));
  const seeds = tensor(new Float32Array(alphas.length * 10).map((_, i) => seed[i % 10]), [
    alphas.length,
    10,
  ]);
  const g = (await gradients(model, { input: points, seed: seeds })).grads[0];
  const per = x.data.length;
  const lhs = new Float32Array(per);
  for (let k = 0; k < alphas.length; k++) {
    for (let p = 0; p < per; p++) lhs[p] += weights[k] * g.data[k * per + p];
  }
  for (let p = 0; p < per; p++) lhs[p] *= x.data[p];
  const [igA, igB] = [await ig(a), await ig(b)];
  const rhs = igA.map((v, p) => 2 * v - igB[p]);
  assert.ok(maxRelativeError(lhs, rhs) < 1e-4, `linearity ${maxRelativeError(lhs, rhs)}`);
  // All rules approach the same integral as steps grow.
  const reference = await ig(a, "gausslegendre", 64);
  for (const rule of ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]) {
    const err = maxRelativeError(await ig(a, rule, 64), reference);
    assert.ok(err < 0.1, `${rule} at 64 steps is ${err} from Gauss-Legendre`);
  }
  await model.dispose();
});

Deno.test("IG baselines: number, file, uniform (seeded) and blurred", async () => {
  const model = await open("resnet_basic");
  const x = fixture(`${FIX}/resnet_basic/input.npy`);
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(
    `${dir}/half.npy`,
    encodeNpy(tensor(new Float32Array(x.data.length / 2).fill(0.5), [1, ...x.dims.slice(1)])),
  );
  const input = await methodInput(model, x, { readFile: (p) => Deno.readFile(`${dir}/${p}`) });
  const params = { steps: 8 };
  const fromNumber = await runMethod("integrated-gradients", input, { ...params, baseline: 0.5 });
  const fromFile = await runMethod("integrated-gradients", input, {
    ...params,
    baseline: "half.npy",
  });
  assert.deepEqual(fromFile.map.data, fromNumber.map.data);
  const u1 = await runMethod("integrated-gradients", input, {
    ...params,
    baseline: "uniform",
    seed: 1,
  });
  const u1again = await runMethod("integrated-gradients", input, {
    ...params,
    baseline: "uniform",
    seed: 1,
  });
  const u2 = await runMethod("integrated-gradients", input, {
    ...params,
    baseline: "uniform",
    seed: 2,
  });
  assert.deepEqual(u1.map.data, u1again.map.data);
  assert.ok(maxAbsError(u1.map.data, u2.map.data) > 0);
  const blurred = await runMethod("integrated-gradients", input, {
    ...params,
    baseline: "blurred",
  });
  for (const r of blurred.info!.delta_relative as number[]) assert.ok(Number.isFinite(r));
  await assert.rejects(
    runMethod("integrated-gradients", input, { ...params, baseline: "missing.npy" }),
    /cannot read baseline "missing\.npy"/,
  );
  await Deno.remove(dir, { recursive: true });
  await model.dispose();
});

Deno.test("SmoothGrad: sigma 0 is the gradient, seeds reproduce, variants agree", async () => {
  const model = await open("resnet_basic");
  const input = await methodInput(model, fixture(`${FIX}/resnet_basic/input.npy`));
  const grad = (await runMethod("saliency", input, { abs: false })).map.data;
  const still = await runMethod("smoothgrad", input, { samples: 3, sigma: 0 });
  assert.ok(maxAbsError(still.map.data, grad) < 1e-6);
  const sq = await runMethod("smoothgrad", input, {
    samples: 3,
    sigma: 0,
    variant: "smoothgrad_sq",
  });
  assert.ok(maxRelativeError(sq.map.data, grad.map((g) => g * g)) < 1e-5);
  const vg = await runMethod("smoothgrad", input, { samples: 3, sigma: 0, variant: "vargrad" });
  assert.ok(Math.max(...vg.map.data.map(Math.abs)) < 1e-9 * Math.max(...sq.map.data));
  const a = await runMethod("smoothgrad", input, { samples: 4, seed: 5 });
  const b = await runMethod("smoothgrad", input, { samples: 4, seed: 5, internal_batch: 3 });
  const c = await runMethod("smoothgrad", input, { samples: 4, seed: 6 });
  assert.ok(maxAbsError(a.map.data, b.map.data) < 1e-6, "batching must not change the noise");
  assert.ok(maxAbsError(a.map.data, c.map.data) > 1e-6, "another seed gives other noise");
  await model.dispose();
});

Deno.test("targets: top-k and several per image give one row per (image, class)", async () => {
  const model = await open("resnet_basic");
  const input = await methodInput(model, fixture(`${FIX}/resnet_basic/input.npy`));
  const top2 = await runMethod("gradcam", input, { target: "top2" });
  assert.deepEqual(top2.map.dims.slice(0, 2), [4, 1]);
  assert.deepEqual(top2.images, [0, 0, 1, 1]);
  const [t0, t1] = targetsOf("resnet_basic");
  assert.equal(top2.targets[0], t0);
  assert.equal(top2.targets[2], t1);
  const listed = await runMethod("saliency", input, { target: [[1, 2], 3] });
  assert.deepEqual(listed.targets, [1, 2, 3]);
  assert.deepEqual(listed.images, [0, 0, 1]);
  const one = await runMethod("saliency", input, { target: 2 });
  const per = one.map.data.length / 2;
  assert.deepEqual(listed.map.data.subarray(per, 2 * per), one.map.data.subarray(0, per));
  await assert.rejects(
    runMethod("saliency", input, { target: 10 }),
    /target 10 is out of range: the model has 10 classes/,
  );
  await assert.rejects(
    runMethod("saliency", input, { target: [1] }),
    /target list has 1 entries, expected one per image \(2\)/,
  );
  await model.dispose();
});

Deno.test("a batch gives the same maps as its images one by one", async () => {
  const model = await open("resnet_basic");
  const x = fixture(`${FIX}/resnet_basic/input.npy`);
  const batch = await methodInput(model, x);
  for (const method of ["gradcam", "guided-backprop", "integrated-gradients"]) {
    const params = method === "integrated-gradients" ? { steps: 8 } : {};
    const whole = await runMethod(method, batch, params);
    const parts: Tensor[] = [];
    for (let i = 0; i < 2; i++) {
      const single = await methodInput(model, batchItem(x, i));
      parts.push((await runMethod(method, single, params)).map);
    }
    const err = maxRelativeError(whole.map.data, concatBatch(parts).data);
    assert.ok(err < 1e-5, `${method}: batch vs single ${err}`);
  }
  await model.dispose();
});

Deno.test("gradient methods agree on WASM and WebGPU within 1e-4", async () => {
  if (!await hasWebGpu()) {
    console.warn("skipped: no WebGPU adapter (install mesa-vulkan-drivers for llvmpipe)");
    return;
  }
  for (const name of ["squeezenet", "mobilenet_v3_small"]) {
    const x = fixture(`${FIX}/${name}/input.npy`);
    const wasm = await open(name, "wasm");
    const gpu = await open(name, "webgpu");
    const [a, b] = [await methodInput(wasm, x), await methodInput(gpu, x)];
    for (const method of ["saliency", "guided-backprop", "deconvnet", "gradcam"]) {
      const err = maxRelativeError(
        (await runMethod(method, b, {})).map.data,
        (await runMethod(method, a, {})).map.data,
      );
      console.log(`${name} ${method}: webgpu vs wasm ${err.toExponential(1)}`);
      assert.ok(err <= 1e-4, `${name} ${method}: ${err}`);
    }
    await wasm.dispose();
    await gpu.dispose();
  }
});
