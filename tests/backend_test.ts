import assert from "node:assert/strict";
import { chooseBackend, probeWebGpu } from "../kernels/backend.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { sizeOf, tensor } from "../kernels/tensor.ts";
import { Random } from "../kernels/random.ts";
import { EMOTION, hasWebGpu, maxAbsError, MOBILENET } from "./_helpers.ts";

Deno.test("auto never picks a software WebGPU adapter", async () => {
  const adapter = await probeWebGpu();
  const choice = await chooseBackend("auto");
  if (adapter.software || !adapter.description) assert.equal(choice.name, "wasm");
  else assert.equal(choice.name, "webgpu");
  assert.ok(choice.reason.length > 0);
  if (choice.name === "wasm") assert.equal(choice.threads, navigator.hardwareConcurrency);
});

Deno.test("WASM and WebGPU give the same logits within 1e-4", async (t) => {
  if (!await hasWebGpu()) {
    console.warn("skipped: no WebGPU adapter (install mesa-vulkan-drivers for llvmpipe)");
    return;
  }
  for (
    const [name, path, dims] of [
      ["emotion", EMOTION, [2, 1, 64, 64]],
      ["mobilenet_v2", MOBILENET, [1, 3, 224, 224]],
    ] as const
  ) {
    await t.step(name, async () => {
      const bytes = Deno.readFileSync(path);
      const n = sizeOf(dims);
      const x = tensor(new Random(7).fillNormal(new Float32Array(n)), dims);
      const wasm = await openModel(bytes, { name, backend: "wasm" });
      const gpu = await openModel(bytes, { name, backend: "webgpu" });
      assert.equal(gpu.backend.name, "webgpu");
      const a = (await wasm.run(x))[wasm.outputName];
      const b = (await gpu.run(x))[gpu.outputName];
      const err = maxAbsError(a.data, b.data);
      console.log(
        `${name}: max |wasm − webgpu| = ${err.toExponential(2)} on ${gpu.backend.adapter}`,
      );
      assert.ok(err < 1e-4, `logits differ by ${err}`);
      await wasm.dispose();
      await gpu.dispose();
    });
  }
});
