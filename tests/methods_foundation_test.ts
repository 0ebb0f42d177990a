import assert from "node:assert/strict";
import { openModel } from "../plugins/model/onnx_model.ts";
import { cam } from "../plugins/method/cam.ts";
import { featureMaps } from "../plugins/method/feature_maps.ts";
import { occlusion } from "../plugins/method/occlusion.ts";
import { batchItem } from "../kernels/tensor.ts";
import {
  EMOTION,
  fixture,
  HAS_MOBILENET,
  maxRelativeError,
  methodInput,
  MOBILENET,
  ROOT,
} from "./_helpers.ts";

const DIR = "tests/fixtures/torch/imagenet_mobilenet_v2";

Deno.test({
  name: "feature maps and CAM match torch on the pretrained MobileNetV2",
  ignore: !HAS_MOBILENET,
}, async () => {
  const model = await openModel(Deno.readFileSync(MOBILENET), { name: "mnv2", backend: "wasm" });
  const input = await methodInput(model, fixture(`${DIR}/input.npy`));
  assert.ok(maxRelativeError(input.logits.data, fixture(`${DIR}/logits.npy`).data) < 1e-4);

  const fm = await featureMaps.run(input, featureMaps.params.parse({ layer: "697" }));
  assert.deepEqual(fm.map.dims, [2, 1280, 7, 7]);
  const fmErr = maxRelativeError(fm.map.data, fixture(`${DIR}/features_697.npy`).data);
  assert.ok(fmErr <= 1e-4, `feature maps: ${fmErr}`);

  const raw = await cam.run(input, cam.params.parse({ target: [285, 967], relu: false }));
  assert.deepEqual(raw.map.dims, [2, 1, 7, 7]);
  assert.equal(raw.layer, "697");
  const camErr = maxRelativeError(raw.map.data, fixture(`${DIR}/cam.npy`).data);
  assert.ok(camErr <= 1e-4, `cam: ${camErr}`);
  const relu = await cam.run(input, cam.params.parse({ target: "top1" }));
  assert.deepEqual(relu.targets, [285, 967]);
  const reluErr = maxRelativeError(relu.map.data, fixture(`${DIR}/cam_relu.npy`).data);
  assert.ok(reluErr <= 1e-4, `cam relu: ${reluErr}`);
  console.log(
    `MobileNetV2 max rel. error: feature maps ${fmErr.toExponential(1)}, CAM ${
      camErr.toExponential(1)
    }`,
  );
  await model.dispose();
});

Deno.test(
  { name: "occlusion matches Captum-semantics occlusion in torch", ignore: !HAS_MOBILENET },
  async () => {
    const model = await openModel(Deno.readFileSync(MOBILENET), { name: "mnv2", backend: "wasm" });
    const input = await methodInput(model, batchItem(fixture(`${DIR}/input.npy`), 0));
    const result = await occlusion.run(
      input,
      occlusion.params.parse({ target: 285, window: 32, stride: 16, baseline: 0 }),
    );
    assert.deepEqual(result.map.dims, [1, 3, 224, 224]);
    assert.equal(result.info?.windows, 169);
    const err = maxRelativeError(result.map.data, fixture(`${DIR}/occlusion_w32_s16_b0.npy`).data);
    console.log(`occlusion max rel. error ${err.toExponential(1)}`);
    assert.ok(err <= 1e-4, `occlusion: ${err}`);
    await model.dispose();
  },
);

Deno.test("CAM on a pooled-to-scores head is the class channel; other heads are refused", async () => {
  const emotion = await openModel(Deno.readFileSync(EMOTION), { name: "emotion", backend: "wasm" });
  const x = fixture("tests/fixtures/emotion/inputs.npy");
  const input = await methodInput(emotion, x);
  const result = await cam.run(input, cam.params.parse({ target: 3, relu: false }));
  const acts = (await emotion.run(x, { outputs: ["conv2d_5/BiasAdd"] }))["conv2d_5/BiasAdd"];
  const [n, k, h, w] = acts.dims;
  for (let i = 0; i < n; i++) {
    const channel = acts.data.subarray((i * k + 3) * h * w, (i * k + 4) * h * w);
    assert.deepEqual(result.map.data.subarray(i * h * w, (i + 1) * h * w), channel);
  }
  await emotion.dispose();

  const vgg = await openModel(Deno.readFileSync(`${ROOT}/tests/fixtures/torch/vgg_bn/model.onnx`), {
    name: "vgg_bn",
    backend: "wasm",
  });
  const vggInput = await methodInput(vgg, fixture("tests/fixtures/torch/vgg_bn/input.npy"));
  await assert.rejects(
    cam.run(vggInput, cam.params.parse({})),
    /Cannot compute CAM for model "vgg_bn": its head is .* not GlobalAveragePool → Gemm\/MatMul — use method "gradcam"/,
  );
  await vgg.dispose();
});
