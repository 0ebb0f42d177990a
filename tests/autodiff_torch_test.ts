/**
 * Gradient graphs from `buildGradientGraph` against torch (float64 references), for single ops
 * whose corner cases finite differences cannot check (tests/fixtures/ops/, made by
 * tools/make_op_fixtures.py) and for whole torchvision models (tests/fixtures/torch/, made by
 * tools/make_torch_fixtures.py). Target: max |ours − torch| / max |torch| ≤ 1e-4.
 */
import * as ort from "onnxruntime-web";
import assert from "node:assert/strict";
import { buildGradientGraph, type ReluRule } from "../graph/autodiff.ts";
import { fixture, maxRelativeError, ROOT } from "./_helpers.ts";

ort.env.wasm.numThreads = 1;

const TOL = 1e-4;

interface OpCase {
  name: string;
  opset: number;
  description: string;
  x: number[];
  y: number[];
  rules: ReluRule[];
}

const OPS = "tests/fixtures/ops";
const opManifest = JSON.parse(Deno.readTextFileSync(`${ROOT}/${OPS}/manifest.json`)) as {
  cases: OpCase[];
};

const SUFFIX: Record<ReluRule, string> = {
  standard: "grad",
  guided: "guided",
  deconvnet: "deconv",
};

for (const c of opManifest.cases) {
  Deno.test(`op ${c.name} (opset ${c.opset}) vs torch: ${c.description}`, async () => {
    const bytes = Deno.readFileSync(`${ROOT}/${OPS}/${c.name}.onnx`);
    const x = fixture(`${OPS}/${c.name}.x.npy`);
    const seed = fixture(`${OPS}/${c.name}.seed.npy`);
    for (const relu of c.rules) {
      const gg = buildGradientGraph(bytes, { of: "y", wrt: ["x"], relu });
      const s = await ort.InferenceSession.create(gg.bytes);
      const out = await s.run({
        x: new ort.Tensor("float32", x.data, x.dims),
        [gg.seed]: new ort.Tensor("float32", seed.data, seed.dims),
      });
      const ref = fixture(`${OPS}/${c.name}.${SUFFIX[relu]}.npy`);
      const got = out[gg.grads[0]];
      assert.deepEqual(got.dims, ref.dims);
      const err = maxRelativeError(got.data as Float32Array, ref.data);
      assert.ok(err <= TOL, `${c.name} ${relu}: relative error ${err.toExponential(2)} > ${TOL}`);
      await s.release();
    }
  });
}
