import assert from "node:assert/strict";
import { runPipeline } from "../mod.ts";
import { EMOTION, maxRelativeError, ROOT } from "./_helpers.ts";

Deno.test("the README's plugin example runs from a pipeline and equals input × gradient", async () => {
  const text = `inputs: ${ROOT}/examples/images/faces/astronaut_face.png
model:
  path: ${EMOTION}
  backend: wasm
methods:
  - plugin: ./gradient_x_input.ts
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
