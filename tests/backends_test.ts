/**
 * Every registered method gives the same numbers on every backend: native and (llvmpipe or
 * hardware) WebGPU against WASM, within 1e-4 of the map's largest magnitude.
 *
 * The WebGPU run is what keeps the WebGPU path correct in CI, where `mesa-vulkan-drivers` provides
 * llvmpipe; it uses one image and small parameters because llvmpipe is ~10× slower than WASM.
 */
import assert from "node:assert/strict";
import "../plugins/mod.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { imagePreprocess } from "../plugins/preprocess/image.ts";
import { pluginNames } from "../pipeline/registry.ts";
import { type Tensor, toCpu, zeros } from "../kernels/tensor.ts";
import type { BackendRequest } from "../kernels/backend.ts";
import type { Model } from "../pipeline/types.ts";
import { EMOTION, hasNative, hasWebGpu, methodInput, ROOT, runMethod } from "./_helpers.ts";

/** The tolerance of the issue: max |a − b| ≤ 1e-4 · max |a|. */
const TOLERANCE = 1e-4;

type Params = Record<string, Record<string, unknown>>;

/** Small parameters: each method runs in well under a second on WASM. */
const PARAMS: Params = {
  occlusion: { window: 16, stride: 16 },
  "integrated-gradients": { steps: 8 },
  smoothgrad: { samples: 4 },
  lime: { samples: 50 },
  rise: { masks: 50 },
  "activation-max": { steps: 3, target: 3, seed: 5 },
};

/** Fewer rows still for llvmpipe, where a batch-16 gradient of the emotion net takes seconds. */
const GPU_PARAMS: Params = {
  ...PARAMS,
  occlusion: { window: 32, stride: 32 },
  "integrated-gradients": { steps: 4 },
  smoothgrad: { samples: 2 },
  lime: { samples: 16 },
  rise: { masks: 16 },
  "activation-max": { steps: 2, target: 3, seed: 5 },
};

const FACES = ["grace_hopper_face.png", "astronaut_face.png"].map((f) =>
  `${ROOT}/examples/images/faces/${f}`
);
// activation-max synthesizes RGB images, so it runs on a 3-channel model (66×66 SqueezeNet).
const SQUEEZENET = `${ROOT}/tests/fixtures/torch/squeezenet/model.onnx`;

interface Pair {
  emotion: Model;
  squeezenet: Model;
}

async function open(backend: BackendRequest): Promise<Pair> {
  return {
    emotion: await openModel(Deno.readFileSync(EMOTION), { name: "emotion", backend }),
    squeezenet: await openModel(Deno.readFileSync(SQUEEZENET), { name: "squeezenet", backend }),
  };
}

async function faces(model: Model, count: number): Promise<Tensor> {
  const params = imagePreprocess.params.parse({ preset: "grayscale", mean: [0.5], std: [0.5] });
  const batch = await imagePreprocess.run({ sources: FACES.slice(0, count), model }, params);
  return batch.tensor;
}

/** max |a − b| / max |a| over the maps of every method, `reference` against `other`. */
async function compareSuite(
  reference: Pair,
  other: Pair,
  options: { images: number; params: Params },
): Promise<{ method: string; relative: number; ms: [number, number] }[]> {
  const x = await faces(reference.emotion, options.images);
  const results = [];
  for (const method of pluginNames("method")) {
    const synth = method === "activation-max";
    const maps: Float32Array[] = [];
    const ms: number[] = [];
    for (const pair of [reference, other]) {
      const model = synth ? pair.squeezenet : pair.emotion;
      const input = await methodInput(model, synth ? zeros([1, 3, 66, 66]) : x);
      const t0 = performance.now();
      const e = await runMethod(method, input, options.params[method] ?? {});
      ms.push(performance.now() - t0);
      assert.equal(e.backend, model.backend.name);
      maps.push((await toCpu(e.map)).data);
    }
    let diff = 0, scale = 0;
    for (let i = 0; i < maps[0].length; i++) {
      diff = Math.max(diff, Math.abs(maps[0][i] - maps[1][i]));
      scale = Math.max(scale, Math.abs(maps[0][i]));
    }
    assert.equal(maps[0].length, maps[1].length);
    results.push({ method, relative: diff / (scale || 1), ms: [ms[0], ms[1]] as [number, number] });
  }
  return results;
}

function report(label: string, results: Awaited<ReturnType<typeof compareSuite>>): void {
  for (const r of results) {
    console.log(
      `${label} ${r.method.padEnd(22)} ${r.relative.toExponential(2)}  (${
        r.ms.map((m) => m.toFixed(0)).join(" / ")
      } ms)`,
    );
  }
  const bad = results.filter((r) => !(r.relative <= TOLERANCE));
  assert.deepEqual(
    bad.map((r) => `${r.method}: ${r.relative.toExponential(2)}`),
    [],
    `${label}: methods differ by more than ${TOLERANCE} of the map's scale`,
  );
}

async function dispose(...pairs: Pair[]): Promise<void> {
  for (const p of pairs) {
    await p.emotion.dispose();
    await p.squeezenet.dispose();
  }
}

Deno.test("every method: native equals WASM within 1e-4", async () => {
  if (!await hasNative()) {
    console.warn("skipped: native backend unavailable (run with --allow-ffi)");
    return;
  }
  const wasm = await open("wasm"), native = await open("native");
  try {
    assert.equal(native.emotion.backend.name, "native");
    const results = await compareSuite(wasm, native, { images: 2, params: PARAMS });
    assert.equal(results.length, pluginNames("method").length);
    report("native", results);
  } finally {
    await dispose(wasm, native);
  }
});

Deno.test("every method: WebGPU (llvmpipe in CI) equals WASM within 1e-4", async () => {
  if (!await hasWebGpu()) {
    console.warn("skipped: no WebGPU adapter (install mesa-vulkan-drivers for llvmpipe)");
    return;
  }
  const wasm = await open("wasm"), gpu = await open("webgpu");
  try {
    assert.equal(gpu.emotion.backend.name, "webgpu");
    report("webgpu", await compareSuite(wasm, gpu, { images: 1, params: GPU_PARAMS }));
  } finally {
    await dispose(wasm, gpu);
  }
});
