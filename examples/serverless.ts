/**
 * The serverless handler, served locally: the same `Request → Response` function deploys to
 * serverless and edge platforms (see the README's "HTTP service" section). The model is read
 * once as bytes; the handler itself never touches the file system.
 *
 * ```sh
 * deno run --allow-read=examples,$(deno info --json | jq -r .npmCache)/registry.npmjs.org/onnxruntime-web \
 *   --allow-net=127.0.0.1:8000 examples/serverless.ts
 * curl -s --data-binary @examples/images/faces/astronaut_face.png -H 'content-type: image/png' \
 *   'http://127.0.0.1:8000/v1/explain?method=gradcam' -o gradcam.png
 * ```
 *
 * @module
 */
import { createHandler } from "../server/mod.ts";

const bytes = await Deno.readFile(new URL("models/emotion.onnx", import.meta.url));
const labels = (await Deno.readTextFile(new URL("models/emotion_labels.txt", import.meta.url)))
  .trim().split("\n");

/** The service: one allow-listed model, given as bytes, default limits. */
export const handler = createHandler({
  models: { emotion: { source: bytes, labels, backend: "wasm" } },
});

if (import.meta.main) Deno.serve({ hostname: "127.0.0.1", port: 8000 }, handler);
