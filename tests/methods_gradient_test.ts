/**
 * Gradient methods against torch references on 14 random-weight torchvision models (11
 * families, opsets 11–17) and the pretrained MobileNetV2: tests/fixtures/torch, made by
 * tools/make_torch_fixtures.py.
 */
import assert from "node:assert/strict";
import "../plugins/mod.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import {
  fixture,
  HAS_MOBILENET,
  maxRelativeError,
  methodInput,
  MOBILENET,
  ROOT,
  runMethod,
} from "./_helpers.ts";

interface ManifestModel {
  name: string;
  onnx: string;
  targets: number[];
  layers: { mid: { onnx_name: string }; last: { onnx_name: string } };
  arrays: Record<string, string>;
}
const manifest = JSON.parse(
  Deno.readTextFileSync(`${ROOT}/tests/fixtures/torch/manifest.json`),
) as { models: ManifestModel[] };
const FIX = "tests/fixtures/torch";
const TOLERANCE = 1e-4;

for (const m of manifest.models) {
  Deno.test(`gradient methods match torch on ${m.name}`, async () => {
    const model = await openModel(Deno.readFileSync(`${ROOT}/${FIX}/${m.onnx}`), {
      name: m.name,
      backend: "wasm",
    });
    const input = await methodInput(model, fixture(`${FIX}/${m.arrays.input}`));
    const target = m.targets;
    const layer = m.layers.last.onnx_name;
    const cases: [string, Record<string, unknown>, string][] = [
      ["saliency", { abs: false }, m.arrays.input_gradient],
      ["guided-backprop", {}, m.arrays.guided_backprop],
      ["deconvnet", {}, m.arrays.deconvnet],
      ["gradcam", { layer }, `${m.name}/gradcam_last.npy`],
      ["gradcam++", { layer }, `${m.name}/gradcampp_last.npy`],
      ["guided-gradcam", { layer }, `${m.name}/guided_gradcam_last.npy`],
    ];
    const errors: string[] = [];
    for (const [method, params, ref] of cases) {
      const result = await runMethod(method, input, { target, ...params });
      const expected = fixture(`${FIX}/${ref}`);
      assert.deepEqual(result.map.dims, expected.dims, `${method} shape`);
      const err = maxRelativeError(result.map.data, expected.data);
      errors.push(`${method} ${err.toExponential(1)}`);
      assert.ok(err <= TOLERANCE, `${m.name} ${method}: max relative error ${err}`);
    }
    console.log(`${m.name}: ${errors.join(", ")}`);
    await model.dispose();
  });
}

Deno.test({
  name: "gradient methods match torch on the pretrained MobileNetV2",
  ignore: !HAS_MOBILENET,
}, async () => {
  const dir = `${FIX}/imagenet_mobilenet_v2`;
  const model = await openModel(Deno.readFileSync(MOBILENET), { name: "mnv2", backend: "wasm" });
  const input = await methodInput(model, fixture(`${dir}/input.npy`));
  // This dequantized net has many pre-activations at ReLU6's bounds, where float32 rounding
  // flips masks: torch itself in float32 is ~2e-2 from its float64 reference. The plain input
  // gradient must be as close as torch float32 is; the others must meet 1e-4.
  const reference = fixture(`${dir}/input_gradient.npy`);
  const torch32 = maxRelativeError(
    fixture(`${dir}/input_gradient_float32.npy`).data,
    reference.data,
  );
  for (
    const [method, params, ref, tolerance] of [
      ["saliency", { abs: false }, "input_gradient", Math.max(TOLERANCE, 1.5 * torch32)],
      ["guided-backprop", {}, "guided_backprop", TOLERANCE],
      ["deconvnet", {}, "deconvnet", TOLERANCE],
      ["gradcam", {}, "gradcam", TOLERANCE],
    ] as const
  ) {
    const result = await runMethod(method, input, { target: [285, 967], ...params });
    const err = maxRelativeError(result.map.data, fixture(`${dir}/${ref}.npy`).data);
    console.log(
      `mobilenet_v2 (pretrained) ${method}: ${err.toExponential(1)}` +
        (method === "saliency" ? ` (torch float32: ${torch32.toExponential(1)})` : ""),
    );
    assert.ok(err <= tolerance, `${method}: ${err}`);
  }
  await model.dispose();
});
