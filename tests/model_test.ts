import assert from "node:assert/strict";
import { openModel } from "../plugins/model/onnx_model.ts";
import { onnxModel } from "../plugins/model/onnx.ts";
import { loadModelBytes, sha256Hex } from "../plugins/model/source.ts";
import { batchItem, concatBatch, tensor } from "../kernels/tensor.ts";
import { Random } from "../kernels/random.ts";
import { EMOTION, HAS_MOBILENET, maxAbsError, MOBILENET, ROOT } from "./_helpers.ts";

function existsSync(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const EMOTION_SHA = "4decf57fea4ad825a833f4d7892dfe37c568fd3bc93c157f717d4b0ba385054e";

function noise(dims: number[], seed: number) {
  const n = dims.reduce((a, b) => a * b, 1);
  return tensor(new Random(seed).fillNormal(new Float32Array(n)), dims);
}

Deno.test(
  { name: "onnx model lists every tensor with op and shape", ignore: !HAS_MOBILENET },
  async () => {
    const model = await openModel(Deno.readFileSync(MOBILENET), { name: "mnv2", backend: "wasm" });
    const tensors = await model.tensors();
    const byName = new Map(tensors.map((t) => [t.name, t]));
    assert.deepEqual(byName.get("697")?.shape, [1, 1280, 7, 7]);
    assert.equal(byName.get("697")?.op, "Clip");
    assert.deepEqual(byName.get("logits")?.shape, [1, 1000]);
    assert.equal(tensors[0].op, "input");
    await model.dispose();
  },
);

Deno.test("static shape inference gives the probe's shapes on every fixture architecture", async () => {
  const files = [
    ...[...Deno.readDirSync(`${ROOT}/tests/fixtures/torch`)]
      .map((d) => `${ROOT}/tests/fixtures/torch/${d.name}/model.onnx`)
      .filter((f) => existsSync(f)),
    ...[...Deno.readDirSync(`${ROOT}/tests/fixtures/ops`)]
      .filter((f) => f.name.endsWith(".onnx"))
      .map((f) => `${ROOT}/tests/fixtures/ops/${f.name}`),
    EMOTION,
  ];
  assert.ok(files.length >= 28, `${files.length} fixtures`);
  if (HAS_MOBILENET) files.push(MOBILENET);
  const probeFailed: string[] = [];
  for (const file of files.sort()) {
    const model = await openModel(Deno.readFileSync(file), { backend: "wasm" });
    try {
      // Every architecture and op fixture is inferred statically: none needs the probe run.
      const inferred = model.inferredTensors();
      assert.ok(inferred, `${file}: static inference left a shape unknown`);
      const probe = await model.probeTensors();
      assert.deepEqual(inferred.map((t) => [t.name, t.op]), probe.map((t) => [t.name, t.op]));
      // The probe leaves every shape unknown (-1) if onnxruntime refuses the graph that exposes
      // every tensor (it did on ShuffleNet while int64 `Shape` outputs were declared float).
      const known = probe.filter((t) => t.op !== "input" && t.shape[0] !== -1);
      if (!known.length) probeFailed.push(file);
      assert.deepEqual(
        known.map((t) => `${t.name}: ${inferred.find((u) => u.name === t.name)!.shape}`),
        known.map((t) => `${t.name}: ${t.shape}`),
        file,
      );
      assert.equal(await model.tensors(), await model.tensors());
    } finally {
      await model.dispose();
    }
  }
  assert.deepEqual(probeFailed, []);
});

Deno.test("intermediate tensors are read by name, for a batch as for single images", async () => {
  const model = await openModel(Deno.readFileSync(EMOTION), { name: "emotion", backend: "wasm" });
  const x = noise([3, 1, 64, 64], 1);
  const all = await model.run(x, { outputs: ["add_2/add"] });
  assert.deepEqual(all["add_2/add"].dims, [3, 256, 8, 8]);
  const singles = [];
  for (let i = 0; i < 3; i++) {
    singles.push((await model.run(batchItem(x, i), { outputs: ["add_2/add"] }))["add_2/add"]);
  }
  assert.ok(maxAbsError(concatBatch(singles).data, all["add_2/add"].data) < 1e-4);
  await assert.rejects(
    model.run(x, { outputs: ["add_2/ad"] }),
    /Unknown tensor 'add_2\/ad'.*did you mean 'add_2\/add'/,
  );
  await model.dispose();
});

Deno.test(
  { name: "a wrong input shape is refused with expected vs got", ignore: !HAS_MOBILENET },
  async () => {
    const model = await openModel(Deno.readFileSync(MOBILENET), { name: "mnv2", backend: "wasm" });
    await assert.rejects(
      model.run(noise([1, 3, 200, 200], 2)),
      /input shape is \[1,3,200,200\], expected \[N,3,224,224\]/,
    );
    await model.dispose();
  },
);

Deno.test("models load from a URL with a sha256 pin and a cache", async () => {
  const bytes = Deno.readFileSync(EMOTION);
  assert.equal(await sha256Hex(bytes), EMOTION_SHA);
  let hits = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    hits++;
    return new Response(bytes);
  });
  const url = `http://127.0.0.1:${server.addr.port}/emotion.onnx`;
  const cacheDir = await Deno.makeTempDir();
  try {
    const a = await loadModelBytes(url, { sha256: EMOTION_SHA, cacheDir });
    const b = await loadModelBytes(url, { sha256: EMOTION_SHA, cacheDir });
    assert.equal(a.length, bytes.length);
    assert.equal(b.length, bytes.length);
    assert.equal(hits, 1, "the second load comes from the cache");
    await assert.rejects(
      loadModelBytes(url, { sha256: "0".repeat(64), cacheDir: `${cacheDir}/other` }),
      /sha256 is 4decf57f.*, expected 0000/,
    );
    await assert.rejects(
      loadModelBytes("http://example.com/m.onnx"),
      /only https:\/\/ URLs \(or http:\/\/ on loopback\) are allowed/,
    );
  } finally {
    await server.shutdown();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("the onnx plugin finds labels beside the model and reports missing files", async () => {
  const model = await onnxModel.run(
    { baseDir: "." },
    onnxModel.params.parse({ path: EMOTION, backend: "wasm" }),
  );
  assert.equal(model.labels?.[3], "happy");
  await model.dispose();
  await assert.rejects(
    onnxModel.run({ baseDir: "." }, onnxModel.params.parse({ path: "nope/missing.onnx" })),
    /Cannot load model "nope\/missing\.onnx": file not found/,
  );
  const notOnnx = await Deno.makeTempFile({ suffix: ".onnx" });
  await Deno.writeTextFile(notOnnx, "this is not a model");
  await assert.rejects(
    openModel(Deno.readFileSync(notOnnx), { name: "bad" }),
    /Cannot (parse|load) ONNX model/,
  );
  await Deno.remove(notOnnx);
});
