/**
 * The serverless handler called with `Request` objects only: no listener, models from bytes and
 * a `Blob`, one structured log record per request, and no `Deno` API in the modules an edge
 * runtime loads.
 */
import assert from "node:assert/strict";
import { createHandler, type LogRecord } from "../server/mod.ts";
import { explain, loadModel } from "../pipeline/explain.ts";
import { EMOTION, maxAbsError, ROOT } from "./_helpers.ts";

const face = Deno.readFileSync(`${ROOT}/examples/images/faces/grace_hopper_face.png`);
const onnx = Deno.readFileSync(EMOTION);
const LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

Deno.test("the handler answers Request objects with models from bytes", async () => {
  const logs: LogRecord[] = [];
  const handler = createHandler({
    models: {
      emotion: { source: onnx, labels: LABELS, backend: "wasm" },
      copy: { source: new Blob([onnx]), backend: "wasm" },
    },
    log: (r) => logs.push(r),
  });
  try {
    const models = await (await handler(new Request("http://edge/v1/models"))).json();
    assert.deepEqual(models.models.map((m: { loaded: boolean }) => m.loaded), [false, false]);

    const res = await handler(
      new Request("http://edge/v1/explain?method=saliency&format=json&abs=false", {
        method: "POST",
        body: face,
        headers: { "content-type": "image/png" },
      }),
    );
    assert.equal(res.status, 200);
    const body = await res.json();
    const model = await loadModel(onnx, { backend: "wasm", labels: LABELS });
    const local = await explain(model, face, { method: "saliency", abs: false });
    await model.dispose();
    assert.deepEqual(body.map.dims, [1, 1, 64, 64]);
    assert.ok(maxAbsError(body.map.data, local.map.data) < 1e-6);
    assert.equal(body.predictions[0][0].label, local.predictions[0][0].label);

    const fd = new FormData();
    fd.append("image", new Blob([face], { type: "image/png" }), "hopper.png");
    fd.append("options", JSON.stringify({ method: "gradcam", model: "copy" }));
    const png = await handler(new Request("http://edge/v1/explain", { method: "POST", body: fd }));
    assert.equal(png.status, 200);
    assert.equal(png.headers.get("content-type"), "image/png");
    assert.equal(png.headers.get("x-lantern-model"), "copy");
    assert.equal((await png.bytes())[1], 0x50);

    const stream = await handler(
      new Request("http://edge/v1/explain?method=occlusion&window=16&stride=16&format=json", {
        method: "POST",
        body: face,
        headers: { "content-type": "image/png", accept: "application/x-ndjson" },
      }),
    );
    const lines = (await stream.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines[0].progress, { done: 16, total: 16, label: "occlusion" });
    assert.deepEqual(lines.at(-1).result.map.dims, [1, 1, 64, 64]);

    const bad = await handler(
      new Request("http://edge/v1/explain?method=nope", {
        method: "POST",
        body: face,
        headers: { "content-type": "image/png" },
      }),
    );
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /Unknown method plugin 'nope'/);

    assert.deepEqual(logs.map((l) => [l.method, l.path, l.status]), [
      ["GET", "/v1/models", 200],
      ["POST", "/v1/explain", 200],
      ["POST", "/v1/explain", 200],
      ["POST", "/v1/explain", 200],
      ["POST", "/v1/explain", 400],
    ]);
    for (const l of logs) assert.equal(typeof l.ms, "number");
    assert.equal(logs[1].model, "emotion");
    assert.equal(logs[2].model, "copy");
    assert.equal(logs[1].bytes_in, face.length);
  } finally {
    await handler.dispose();
  }
});

Deno.test("the modules an edge runtime loads use no Deno API", async () => {
  for (const file of ["server/handler.ts", "server/limits.ts", "server/openapi.ts"]) {
    const text = await Deno.readTextFile(`${ROOT}/${file}`);
    assert.ok(!/\bDeno\./.test(text.replace(/^\s*(\*|\/\/).*$/gm, "")), `${file} uses Deno`);
  }
  // explain reads paths through the image preprocess, only where Deno exists.
  const explainText = await Deno.readTextFile(`${ROOT}/pipeline/explain.ts`);
  assert.ok(!/\bDeno\./.test(explainText.replace(/^\s*(\*|\/\/).*$/gm, "")));
});
