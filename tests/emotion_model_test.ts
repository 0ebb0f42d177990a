/**
 * The bundled demo model `examples/models/emotion.onnx` against TF.js reference outputs of the
 * original @vladmandic/human graph model (fixtures made by `tools/verify_emotion.ts`).
 */
import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { decodeNpy } from "../kernels/npy.ts";
import { decodeModel, opsetVersion, realInputs, valueInfoDims } from "../graph/onnx_io.ts";

const MODEL = new URL("../examples/models/emotion.onnx", import.meta.url);
const LABELS = new URL("../examples/models/emotion_labels.txt", import.meta.url);
const FIXTURES = new URL("./fixtures/emotion/", import.meta.url);
// The TF.js CPU backend and onnxruntime's WASM kernels sum in different orders.
const LOGIT_TOL = 1e-4;
const SOFTMAX_TOL = 1e-5;

async function npy(name: string) {
  return decodeNpy(await Deno.readFile(new URL(name, FIXTURES)), name);
}

function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / classes; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    const max = Math.max(...row);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[r * classes + c] = Math.exp(row[c] - max);
    for (let c = 0; c < classes; c++) out[r * classes + c] /= sum;
  }
  return out;
}

function assertClose(actual: Float32Array, expected: Float32Array, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  assert.ok(worst <= tol, `${what}: max abs difference ${worst} exceeds ${tol}`);
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

async function session(): Promise<ort.InferenceSession> {
  ort.env.wasm.numThreads = 1;
  return await ort.InferenceSession.create(await Deno.readFile(MODEL));
}

Deno.test("emotion.onnx has the documented interface and a clean NCHW graph", async () => {
  const model = decodeModel(await Deno.readFile(MODEL));
  const graph = model.graph!;
  assert.equal(opsetVersion(model), 17);
  const inputs = realInputs(graph);
  assert.deepEqual(inputs.map((i) => i.name), ["input"]);
  assert.deepEqual(valueInfoDims(inputs[0]), [-1, 1, 64, 64]);
  assert.deepEqual(graph.output.map((o) => o.name), ["logits"]);
  assert.deepEqual(valueInfoDims(graph.output[0]), [-1, 7]);
  const ops = new Set(graph.node.map((n) => n.opType));
  assert.deepEqual([...ops].sort(), ["Add", "Conv", "MaxPool", "ReduceMean", "Relu"]);
  // The head is conv2d_5 (7 class maps, 8×8) → spatial mean = logits: CAM-compatible.
  const last = graph.node[graph.node.length - 1];
  assert.equal(last.opType, "ReduceMean");
  assert.deepEqual(last.output, ["logits"]);
  assert.deepEqual(last.input, ["conv2d_5/BiasAdd"]);
  const axes = last.attribute.find((a) => a.name === "axes")!.ints.map(Number);
  assert.deepEqual(axes, [2, 3]);
  const classMap = graph.valueInfo.find((v) => v.name === "conv2d_5/BiasAdd")!;
  assert.deepEqual(valueInfoDims(classMap), [-1, 7, 8, 8]);
  const features = graph.valueInfo.find((v) => v.name === "add_2/add")!;
  assert.deepEqual(valueInfoDims(features), [-1, 256, 8, 8]);
});

Deno.test("emotion.onnx matches TF.js logits and softmax on face crops and noise", async () => {
  const inputs = await npy("inputs.npy");
  const refLogits = await npy("tfjs_logits.npy");
  const refSoftmax = await npy("tfjs_softmax.npy");
  const n = inputs.dims[0];
  assert.deepEqual(inputs.dims, [n, 1, 64, 64]);
  const s = await session();
  const out = await s.run({ input: new ort.Tensor("float32", inputs.data, inputs.dims) });
  const logits = out.logits.data as Float32Array;
  assert.deepEqual(out.logits.dims, [n, 7]);
  assertClose(logits, refLogits.data, LOGIT_TOL, "logits");
  assertClose(softmaxRows(logits, 7), refSoftmax.data, SOFTMAX_TOL, "softmax");

  // The batch axis is dynamic: one item alone gives the same logits as inside the batch.
  const one = await s.run({
    input: new ort.Tensor("float32", inputs.data.slice(4096, 8192), [1, 1, 64, 64]),
  });
  assertClose(one.logits.data as Float32Array, logits.subarray(7, 14), 1e-5, "batch of one");
  await s.release();

  // Rows 0 and 1 are the Grace Hopper and astronaut face crops; labels follow human's order.
  const labels = (await Deno.readTextFile(LABELS)).trim().split("\n");
  assert.deepEqual(labels, ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]);
  assert.equal(labels[argmax(logits.subarray(0, 7))], "fear");
  assert.equal(labels[argmax(logits.subarray(7, 14))], "happy");
});
