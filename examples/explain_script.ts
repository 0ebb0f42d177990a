/**
 * Explain a photo from a script with the least permissions: load the model once, explain with
 * two methods, write the heatmaps.
 *
 * ```sh
 * deno run --allow-read=examples,$(deno info --json | jq -r .npmCache)/registry.npmjs.org/onnxruntime-web \
 *   --allow-write=out examples/explain_script.ts
 * ```
 *
 * That is the least set: reading the model and the photo, reading onnxruntime-web's own `.wasm`
 * from Deno's npm cache (`~/.cache/deno/npm/registry.npmjs.org/onnxruntime-web` by default),
 * and writing the two PNGs. No network, environment or system access: `backend: "wasm"` skips
 * the WebGPU probe, and the model's labels are read from the file beside it.
 *
 * @module
 */
import { explain, loadModel } from "../mod.ts";

const model = await loadModel(new URL("models/emotion.onnx", import.meta.url).pathname, {
  backend: "wasm",
});
const photo = await Deno.readFile(new URL("images/faces/astronaut_face.png", import.meta.url));

const gradcam = await explain(model, photo, { method: "gradcam", target: "top1" });
const [best] = gradcam.predictions[0];
console.log(`prediction: ${best.label} (${(best.probability * 100).toFixed(1)}%)`);
console.log(`grad-cam map ${gradcam.map.dims.join("×")}, range ${gradcam.explanation.range}`);

const ig = await explain(model, photo, { method: "integrated-gradients", steps: 16 });
console.log(`integrated gradients: completeness gap ${ig.explanation.info?.delta_relative}`);

await Deno.mkdir("out", { recursive: true });
await Deno.writeFile("out/astronaut_gradcam.png", await gradcam.png({ size: 256 }));
await Deno.writeFile("out/astronaut_ig.png", await ig.png({ size: 256, normalize: "p99" }));
console.log("wrote out/astronaut_gradcam.png, out/astronaut_ig.png");
await model.dispose();
