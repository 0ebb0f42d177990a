/**
 * Reproduce the multi-threaded WASM hang and show the fix (see kernels/wasm_memory.ts).
 *
 *   deno run -A tools/hang_repro.ts raw       # plain onnxruntime-web, 2 threads: usually hangs
 *   deno run -A tools/hang_repro.ts lantern   # Lantern's loader (heap reserved): completes
 *
 * The graph is the shared MobileNetV2 with every tensor exposed as an output, so its first run
 * grows the WASM heap mid-run. Run each mode several times under `timeout 20`.
 */
import { decodeModel, encodeModel, withOutputs } from "../graph/onnx_io.ts";
import { loadOrt } from "../kernels/backend.ts";

const mode = Deno.args[0] ?? "lantern";
const ort = mode === "raw"
  ? await import("onnxruntime-web")
  : await loadOrt({ name: "wasm", reason: "repro", threads: 2 });
ort.env.wasm.numThreads = 2;
const path = new URL("../../shared/models/imagenet/mobilenet_v2_float32.onnx", import.meta.url);
const proto = decodeModel(Deno.readFileSync(path));
const names = proto.graph!.node.flatMap((n) => n.output);
const session = await ort.InferenceSession.create(encodeModel(withOutputs(proto, names)), {
  executionProviders: ["wasm"],
});
const x = new ort.Tensor("float32", new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
for (let i = 0; i < 3; i++) await session.run({ input: x });
console.log(`${mode}: 3 runs completed`);
Deno.exit(0);
