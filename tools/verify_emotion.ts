/**
 * Check `examples/models/emotion.onnx` (made by `tools/convert_emotion.py`) against the TF.js
 * graph model it was converted from, and optionally write the test fixtures.
 *
 * Needs the extracted npm package (see `tools/convert_emotion.py` for how to get it):
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-sys tools/verify_emotion.ts \
 *   --models /tmp/human/package/models [--write-fixtures]
 * ```
 *
 * Inputs: two real face crops (Grace Hopper, skimage astronaut) preprocessed exactly like
 * `@vladmandic/human` does it (`src/gear/emotion.ts`), plus seeded uniform noise in [-1, 1].
 * TF.js runs the original graph on its pure-JS CPU backend; onnxruntime-web runs the ONNX on WASM.
 * Exits non-zero if logits or softmax differ by more than 1e-4.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-web";
import { decode as decodePng, encode as encodePng } from "fast-png";
import jpeg from "jpeg-js";
import { encodeNpy } from "../kernels/npy.ts";
import { tensor } from "../kernels/tensor.ts";

const LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
const TF_LOGITS = "StatefulPartitionedCall/model_1/global_average_pooling2d_1/Mean";
const TF_OUTPUT = "Identity";
const TOLERANCE = 1e-4;
const FIXTURES = new URL("../tests/fixtures/emotion/", import.meta.url);

/** A face to crop: image path and a hand-picked square box `[x0, y0, x1, y1]` in pixels. */
interface FaceSpec {
  name: string;
  path: string;
  box: [number, number, number, number];
}

const FACES: FaceSpec[] = [
  {
    name: "grace_hopper",
    path: "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
    box: [160, 130, 370, 340],
  },
  {
    name: "astronaut",
    path: "/usr/lib/python3/dist-packages/skimage/data/astronaut.png",
    box: [155, 55, 295, 195],
  },
];

function parseArgs(args: string[]): { models: string; onnx: string; write: boolean } {
  const out = {
    models: "/tmp/human/package/models",
    onnx: new URL("../examples/models/emotion.onnx", import.meta.url).pathname,
    write: false,
  };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--models") out.models = args[++i];
    else if (args[i] === "--onnx") out.onnx = args[++i];
    else if (args[i] === "--write-fixtures") out.write = true;
    else {throw new Error(
        `Cannot parse argument "${args[i]}": expected --models, --onnx, --write-fixtures`,
      );}
  }
  return out;
}

async function readRgb(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const bytes = await Deno.readFile(path);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
    return { data: img.data, width: img.width, height: img.height };
  }
  const png = decodePng(bytes);
  if (png.depth !== 8 || png.channels < 3) {
    throw new Error(
      `Cannot read "${path}": PNG has ${png.channels} channels of ${png.depth} bits, expected 8-bit RGB(A)`,
    );
  }
  const n = png.width * png.height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = png.data[i * png.channels + c];
  }
  return { data: rgb, width: png.width, height: png.height };
}

/**
 * human's pipeline: the face box is cut to the 192×192 facemesh size and divided by 255
 * (`facemeshutil.ts` cutAndResize), then `emotion.ts` bilinearly resizes to 64×64, converts to
 * gray with weights (0.2989, 0.5870, 0.1140), and maps [0, 1] to [-1, 1] by (g - 0.5) * 2.
 */
async function faceInput(face: FaceSpec): Promise<Float32Array> {
  const img = await readRgb(face.path);
  const [x0, y0, x1, y1] = face.box;
  return tf.tidy(() => {
    const image = tf.tensor4d(img.data, [1, img.height, img.width, 3], "int32").toFloat();
    const box = [[y0 / img.height, x0 / img.width, y1 / img.height, x1 / img.width]];
    const crop = tf.image.cropAndResize(image, box, [0], [192, 192]).div(255);
    const small = tf.image.resizeBilinear(crop as tf.Tensor4D, [64, 64], false);
    const gray = small.mul(tf.tensor1d([0.2989, 0.587, 0.114])).sum(3, true);
    return gray.sub(0.5).mul(2).dataSync() as Float32Array;
  });
}

function noiseInput(seed: number): Float32Array {
  // mulberry32: a tiny seeded PRNG so the fixture is reproducible.
  let a = seed >>> 0;
  const out = new Float32Array(64 * 64);
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
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

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function runTfjs(modelsDir: string, input: Float32Array, n: number) {
  await tf.setBackend("cpu");
  const json = JSON.parse(await Deno.readTextFile(`${modelsDir}/emotion.json`));
  const manifest = json.weightsManifest as {
    paths: string[];
    weights: tf.io.WeightsManifestEntry[];
  }[];
  const chunks = await Promise.all(
    manifest.flatMap((g) => g.paths).map((p) => Deno.readFile(`${modelsDir}/${p}`)),
  );
  const weightData = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let off = 0;
  for (const c of chunks) weightData.set(c, (off += c.length) - c.length);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: manifest.flatMap((g) => g.weights),
    weightData: weightData.buffer,
  }));
  // C = 1, so the NHWC input TF wants has the same memory order as the NCHW one ONNX wants.
  const x = tf.tensor4d(input, [n, 64, 64, 1]);
  const [logits, probs] = model.execute(x, [TF_LOGITS, TF_OUTPUT]) as tf.Tensor[];
  return {
    logits: logits.dataSync() as Float32Array,
    softmax: probs.dataSync() as Float32Array,
  };
}

async function runOnnx(path: string, input: Float32Array, n: number): Promise<Float32Array> {
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(await Deno.readFile(path));
  const result = await session.run({ input: new ort.Tensor("float32", input, [n, 1, 64, 64]) });
  return result.logits.data as Float32Array;
}

/** Encode a [-1, 1] 64×64 gray input as an 8-bit PNG for people to look at. */
function grayPng(input: Float32Array): Uint8Array {
  const px = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) {
    px[i] = Math.max(0, Math.min(255, Math.round((input[i] + 1) * 127.5)));
  }
  return encodePng({ width: 64, height: 64, data: px, channels: 1, depth: 8 });
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  const names = [...FACES.map((f) => f.name), "noise_seed1", "noise_seed2"];
  const parts = [...await Promise.all(FACES.map(faceInput)), noiseInput(1), noiseInput(2)];
  const n = parts.length;
  const input = new Float32Array(n * 4096);
  parts.forEach((p, i) => input.set(p, i * 4096));

  const ref = await runTfjs(args.models, input, n);
  const logits = await runOnnx(args.onnx, input, n);
  const probs = softmaxRows(logits, LABELS.length);
  const dLogits = maxAbsDiff(logits, ref.logits);
  const dSoftmax = maxAbsDiff(probs, ref.softmax);
  const dRefSoftmax = maxAbsDiff(softmaxRows(ref.logits, LABELS.length), ref.softmax);
  for (let i = 0; i < n; i++) {
    const row = probs.subarray(i * 7, i * 7 + 7);
    const ranked = [...row].map((p, c) => [p, c]).sort((a, b) => b[0] - a[0]).slice(0, 3);
    console.log(
      `${names[i].padEnd(13)} ${ranked.map(([p, c]) => `${LABELS[c]} ${p.toFixed(3)}`).join(", ")}`,
    );
  }
  console.log(`max |logits ONNX - TF.js|  = ${dLogits.toExponential(2)}`);
  console.log(`max |softmax ONNX - TF.js| = ${dSoftmax.toExponential(2)}`);
  console.log(`max |softmax(TF.js logits) - TF.js softmax| = ${dRefSoftmax.toExponential(2)}`);

  if (args.write) {
    // Faces plus one noise input keep the fixture small (3 × 16 KiB).
    const keep = [0, 1, 2];
    const pick = (a: Float32Array, w: number) => {
      const out = new Float32Array(keep.length * w);
      keep.forEach((k, j) => out.set(a.subarray(k * w, (k + 1) * w), j * w));
      return out;
    };
    await Deno.mkdir(FIXTURES, { recursive: true });
    const files: [string, Uint8Array][] = [
      ["inputs.npy", encodeNpy(tensor(pick(input, 4096), [keep.length, 1, 64, 64]))],
      ["tfjs_logits.npy", encodeNpy(tensor(pick(ref.logits, 7), [keep.length, 7]))],
      ["tfjs_softmax.npy", encodeNpy(tensor(pick(ref.softmax, 7), [keep.length, 7]))],
      ...FACES.map((f, i): [string, Uint8Array] => [`${f.name}_64.png`, grayPng(parts[i])]),
    ];
    for (const [file, bytes] of files) await Deno.writeFile(new URL(file, FIXTURES), bytes);
    console.log(`wrote ${files.map((f) => f[0]).join(", ")} to ${FIXTURES.pathname}`);
  }
  if (!(dLogits <= TOLERANCE && dSoftmax <= TOLERANCE)) {
    console.error(`Cannot verify emotion.onnx: differences exceed ${TOLERANCE}`);
    Deno.exit(1);
  }
}

if (import.meta.main) await main();
