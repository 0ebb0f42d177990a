/**
 * The scripting API: `loadModel` from a path, bytes, a Blob or a loopback URL, and `explain`
 * from bytes, a Blob, a path or a tensor, against the pipeline runner's result for the same
 * method, with its in-memory renders and its typed errors.
 */
import assert from "node:assert/strict";
import { explain, ExplainError, loadModel, runPipeline } from "../mod.ts";
import { readImageHeader } from "../kernels/image_decode.ts";
import { sha256Hex } from "../plugins/model/source.ts";
import { EMOTION, maxAbsError, ROOT } from "./_helpers.ts";

const FACE = `${ROOT}/examples/images/faces/astronaut_face.png`;
const face = Deno.readFileSync(FACE);

async function kind(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ExplainError, String(e));
    return `${e.kind}: ${e.message}`;
  }
  return "no error";
}

Deno.test("explain gives the pipeline's map from bytes, a Blob, a path and a tensor", async () => {
  const model = await loadModel(EMOTION, { backend: "wasm" });
  try {
    assert.equal(model.labels?.[3], "happy"); // found beside the model
    const piped = await runPipeline({
      inputs: FACE,
      model: { path: EMOTION, backend: "wasm" },
      methods: [{ name: "gradcam", target: "top1" }],
      render: [{ name: "npy" }],
    });
    const reference = piped.explanations[0];
    const fromBytes = await explain(model, face, { method: "gradcam", target: "top1" });
    assert.deepEqual(fromBytes.map.dims, [1, 1, 8, 8]);
    assert.deepEqual(fromBytes.explanation.targets, reference.targets);
    assert.ok(maxAbsError(fromBytes.map.data, reference.map.data) < 1e-6);
    assert.ok(fromBytes.map.data.some((v) => v > 0));
    assert.deepEqual(fromBytes.predictions, piped.predictions);

    const blob = await explain(model, new Blob([face]), { method: "gradcam" });
    const path = await explain(model, FACE, { method: "gradcam" });
    const tensor = await explain(model, fromBytes.batch.tensor, { method: "gradcam" });
    for (const r of [blob, path, tensor]) assert.deepEqual(r.map.data, fromBytes.map.data);
    assert.deepEqual(path.batch.names, ["astronaut_face"]);

    // Method parameters sit beside method/target/layer, validated by the method's schema.
    const ig = await explain(model, face, { method: "integrated-gradients", steps: 8 });
    assert.deepEqual(ig.map.dims, [1, 1, 64, 64]);
    assert.equal(ig.explanation.info?.steps ?? 8, 8);
  } finally {
    await model.dispose();
  }
});

Deno.test("explain renders PNGs and JSON in memory", async () => {
  const model = await loadModel(new Blob([Deno.readFileSync(EMOTION)]), {
    backend: "wasm",
    labels: ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
  });
  try {
    const r = await explain(model, face, { method: "gradcam", target: "top2" });
    assert.deepEqual(r.map.dims, [2, 1, 8, 8]);
    const first = await r.png();
    const second = await r.png({ row: 1 });
    assert.notDeepEqual(first, second);
    assert.deepEqual(readImageHeader(first, "a"), { format: "png", width: 64, height: 64 });
    const large = await r.png({ size: 256, colormap: "viridis" });
    assert.equal(readImageHeader(large, "b").width, 256);
    assert.match(await kind(r.png({ row: 2 })), /^params: .*2 row/);
    assert.match(await kind(r.png({ colormap: "rainbow" })), /^params: .*colormap/);
    const json = await r.json();
    assert.equal(json.images[0].predictions[0].label, "happy");
    assert.deepEqual(json.images[0].explanations.map((e) => e.target), r.explanation.targets);

    // A multi-channel layer map is drawn as a grid.
    const maps = await explain(model, face, { method: "feature-maps" });
    assert.ok(maps.map.dims[1] > 1);
    assert.ok(readImageHeader(await maps.png(), "g").width > 64);
  } finally {
    await model.dispose();
  }
});

Deno.test("explain names whose fault an error is", async () => {
  const model = await loadModel(Deno.readFileSync(EMOTION), { backend: "wasm" });
  try {
    assert.match(await kind(explain(model, face, { method: "gradkam" })), /^method: .*gradcam/);
    assert.match(
      await kind(explain(model, face, { method: "occlusion", windw: 3 })),
      /^params: .*unknown parameter 'windw'.*window/,
    );
    assert.match(await kind(explain(model, face, { method: "gradcam", target: 7 })), /^params:/);
    assert.match(
      await kind(explain(model, face.slice(0, 4000), { method: "gradcam" })),
      /^input: .*corrupt PNG/,
    );
    assert.match(
      await kind(explain(model, face, { method: "gradcam", maxPixels: 1000 })),
      /^limit: .*192x192 is 36864 pixels, over the limit of 1000/,
    );
    assert.match(
      await kind(explain(model, face, { method: "gradcam", preprocess: { preset: "imagenet" } })),
      /^input: .*channel/,
    );
    assert.match(await kind(explain(model, undefined, { method: "gradcam" })), /^input: /);
    const stop = new AbortController();
    stop.abort(new Error("enough"));
    assert.match(
      await kind(explain(model, face, { method: "gradcam", signal: stop.signal })),
      /^aborted: .*enough/,
    );
    // A run is stopped at the method's next progress report.
    const late = new AbortController();
    let reports = 0;
    const stopped = explain(model, face, {
      method: "occlusion",
      window: 4,
      stride: 1,
      signal: late.signal,
      progress: () => {
        if (++reports === 2) late.abort(new Error("halfway"));
      },
    });
    assert.match(await kind(stopped), /^aborted: .*halfway/);
    assert.equal(reports, 2);
  } finally {
    await model.dispose();
  }
});

Deno.test("loadModel fetches a URL into memory and checks its sha256 pin", async () => {
  const bytes = Deno.readFileSync(EMOTION);
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () => new Response(bytes),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/emotion.onnx`;
    const model = await loadModel(url, { backend: "wasm", sha256: await sha256Hex(bytes) });
    assert.equal(model.name, "emotion.onnx");
    assert.deepEqual(model.inputShape, [-1, 1, 64, 64]);
    await model.dispose();
    await assert.rejects(
      loadModel(url, { backend: "wasm", sha256: "0".repeat(64) }),
      /sha256 is [0-9a-f]{64}, expected 0{64}/,
    );
    await assert.rejects(loadModel("http://example.com/m.onnx"), /only https:\/\/ URLs/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("runPipeline takes inputs as bytes, Blobs and a tensor, with the same maps as files", async () => {
  const other = Deno.readFileSync(`${ROOT}/examples/images/faces/grace_hopper_face.png`);
  const config = {
    model: { path: EMOTION, backend: "wasm" },
    methods: [{ name: "gradcam", target: "top1" }],
    render: [{ name: "npy" }],
  };
  const fromFiles = await runPipeline({
    ...config,
    inputs: [FACE, `${ROOT}/examples/images/faces/grace_hopper_face.png`],
  });
  const fromBytes = await runPipeline(config, {
    inputs: [face, new File([other], "hopper.png")],
  });
  assert.deepEqual(fromBytes.explanations[0].map.data, fromFiles.explanations[0].map.data);
  assert.deepEqual(fromBytes.files.map((f) => f.path).sort(), [
    "hopper_gradcam.npy",
    "input0_gradcam.npy",
  ]);
  const fromTensor = await runPipeline(config, { inputs: fromFiles.batch.tensor });
  assert.deepEqual(fromTensor.explanations[0].map.data, fromFiles.explanations[0].map.data);
  // Two unnamed byte inputs get distinct names rather than colliding output files.
  const twoUnnamed = await runPipeline(config, { inputs: [face, other] });
  assert.deepEqual(twoUnnamed.batch.names, ["input0", "input1"]);
});
