/**
 * The `onnx` model plugin: load a classifier from a path or https URL and run it on the chosen
 * backend.
 *
 * @module
 */
import { z } from "zod";
import { BACKEND_REQUESTS, type BackendRequest } from "../../kernels/backend.ts";
import { defineModel } from "../../pipeline/plugin.ts";
import { openModel } from "./onnx_model.ts";
import { findLabels, loadLabels, loadModelBytes, resolvePath } from "./source.ts";

/** Parameters of the `onnx` model plugin. */
export const onnxParams = z.object({
  /** Path (relative to the pipeline file) or https URL of the `.onnx` file. */
  path: z.string().min(1),
  /** Expected sha256 of the file, hex. */
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits").optional(),
  /** `auto` picks a hardware WebGPU adapter, else native onnxruntime when loadable, else WASM. */
  backend: z.enum(BACKEND_REQUESTS as [BackendRequest, ...BackendRequest[]]).default("auto"),
  /** Labels file, one class name per line (default: a `*labels*.txt` beside the model). */
  labels: z.string().optional(),
  /** Graph input that takes the image (default: the first). */
  input: z.string().optional(),
  /** Graph output holding class scores (default: the first). */
  output: z.string().optional(),
  /** Download cache directory for URLs. */
  cache: z.string().optional(),
}).strict();

/** Loads an ONNX classifier and runs it with onnxruntime (web or native). */
export const onnxModel = defineModel({
  name: "onnx",
  description: "ONNX classifier run by onnxruntime (WebGPU, native, or SIMD+threaded WASM)",
  params: onnxParams,
  async run({ baseDir }, params) {
    const bytes = await loadModelBytes(params.path, {
      baseDir,
      sha256: params.sha256,
      cacheDir: params.cache,
    });
    const labels = params.labels
      ? await loadLabels(params.labels, baseDir)
      : await findLabels(resolvePath(params.path, baseDir));
    const name = params.path.split("/").pop()!;
    return await openModel(bytes, {
      name,
      backend: params.backend,
      labels,
      input: params.input,
      output: params.output,
    });
  },
});
