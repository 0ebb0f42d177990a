/**
 * The example method plugins (examples/plugins/) against independent references
 * (tests/fixtures/plugins/, made by tools/make_plugin_fixtures.py from the torch fixtures), run
 * from pipelines both in-process and sandboxed.
 */
import assert from "node:assert/strict";
import { runPipeline } from "../mod.ts";
import { firstComponentProjection } from "../examples/plugins/eigen_cam.ts";
import { EMOTION, fixture, maxRelativeError, ROOT } from "./_helpers.ts";

interface PluginFixture {
  name: string;
  onnx: string;
  input: string;
  targets: number[];
  eigen_cam_layer: string;
  gradient_x_input: string;
  eigen_cam: string;
  eigen_cam_norelu: string;
}
const FIX = "tests/fixtures/plugins";
const manifest = JSON.parse(Deno.readTextFileSync(`${ROOT}/${FIX}/manifest.json`)) as {
  models: PluginFixture[];
};

function pipeline(m: PluginFixture, trusted: boolean): string {
  return `inputs: ${ROOT}/${FIX}/${m.input}
model:
  path: ${ROOT}/${FIX}/${m.onnx}
  backend: wasm
plugins:
  - path: plugins/gradient_x_input.ts
    trusted: ${trusted}
  - path: plugins/eigen_cam.ts
    trusted: ${trusted}
methods:
  - name: gradient-x-input
    target: [${m.targets.join(", ")}]
  - name: eigen-cam
    layer: ${JSON.stringify(m.eigen_cam_layer)}
  - name: eigen-cam
    id: eigen-cam-signed
    layer: ${JSON.stringify(m.eigen_cam_layer)}
    relu: false
render:
  - name: npy
`;
}

for (const m of manifest.models) {
  for (const trusted of [true, false]) {
    Deno.test(`example plugins match their references on ${m.name} (${trusted ? "in-process" : "sandboxed"})`, async () => {
      const result = await runPipeline(pipeline(m, trusted), { baseDir: `${ROOT}/examples` });
      assert.deepEqual(result.failures, []);
      const [gxi, eigen, signed] = result.explanations;
      const cases = [
        [gxi, m.gradient_x_input, 1e-4],
        [eigen, m.eigen_cam, 1e-4],
        [signed, m.eigen_cam_norelu, 1e-4],
      ] as const;
      const errors: string[] = [];
      for (const [e, ref, tol] of cases) {
        const expected = fixture(`${FIX}/${ref}`);
        assert.deepEqual(e.map.dims, expected.dims, `${e.method} shape`);
        const err = maxRelativeError(e.map.data, expected.data);
        errors.push(`${e.method} ${err.toExponential(1)}`);
        assert.ok(err <= tol, `${m.name} ${e.method}: max relative error ${err}`);
      }
      console.log(`${m.name}: ${errors.join(", ")}`);
    });
  }
}

Deno.test("Eigen-CAM's projection is the first principal component (a rank-one check)", () => {
  // A = u·vᵀ + channel offsets: centred, X is rank one, so the map is ±(u − mean u)·‖v‖.
  const c = 5, n = 6;
  const u = [3, -1, 0.5, 2, -2, 1], v = [1, 2, -1, 0.5, 3];
  const a = new Float32Array(c * n);
  for (let k = 0; k < c; k++) for (let p = 0; p < n; p++) a[k * n + p] = v[k] * u[p] + 10 * k;
  const proj = firstComponentProjection(a, { channels: c, positions: n });
  const meanU = u.reduce((s, x) => s + x, 0) / n;
  const norm = Math.hypot(...v);
  const sign = Math.sign(proj[0] / (u[0] - meanU));
  for (let p = 0; p < n; p++) assert.ok(Math.abs(proj[p] - sign * (u[p] - meanU) * norm) < 1e-9);
});

Deno.test("an undeclared local plugin: entry still runs in-process and equals input × gradient", async () => {
  const text = `inputs: ${ROOT}/examples/images/faces/astronaut_face.png
model:
  path: ${EMOTION}
  backend: wasm
methods:
  - plugin: ./plugins/gradient_x_input.ts
  - name: saliency
    abs: false
render:
  - name: npy
`;
  const result = await runPipeline(text, { baseDir: `${ROOT}/examples` });
  const [gxi, grad] = result.explanations;
  assert.equal(gxi.method, "gradient-x-input");
  const x = result.batch.tensor.data;
  const expected = grad.map.data.map((g, i) => g * x[i]);
  assert.ok(maxRelativeError(gxi.map.data, expected) < 1e-6);
});
