/**
 * The service's config file (`lantern serve --config server.yaml`): the model allow-list, the
 * default model, the limits and logging, validated with zod like pipeline files.
 *
 * ```yaml
 * models:
 *   emotion:
 *     source: models/emotion.onnx   # path (relative to this file) or https URL
 *     sha256: 0f3c…                  # optional pin
 *     backend: wasm
 * default_model: emotion
 * limits:
 *   max_body_bytes: 10485760
 *   max_pixels: 16000000
 *   timeout_ms: 30000
 *   concurrency: 2
 *   queue: 16
 * log: true
 * ```
 *
 * @module
 */
import { z } from "zod";
import { PipelineSource } from "../pipeline/config.ts";
import { resolvePath } from "../plugins/model/source.ts";
import { imageParams } from "../plugins/preprocess/image.ts";
import type { HandlerConfig, ModelConfig } from "./handler.ts";
import type { Limits } from "./limits.ts";
import { BACKEND_REQUESTS, type BackendRequest } from "../kernels/backend.ts";

const positive = z.number().int().positive();

// One model of the allow-list in the config file.
const modelEntrySchema = z.object({
  /** Path (relative to the config file) or https URL of the `.onnx` file. */
  source: z.string().min(1),
  /** Expected sha256, hex. */
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits").optional(),
  /** Labels file (relative to the config file) or the class names. */
  labels: z.union([z.string(), z.array(z.string())]).optional(),
  /** Backend. */
  backend: z.enum(BACKEND_REQUESTS as [BackendRequest, ...BackendRequest[]]).optional(),
  /** `image` preprocess parameters for this model. */
  preprocess: z.record(z.string(), z.unknown()).optional(),
}).strict();

// The config file.
const serverConfigSchema = z.object({
  /** Model names (letters, digits, `_`, `.`, `-`) → sources: the only models ever loaded. */
  models: z.record(
    z.string().regex(/^[A-Za-z0-9_.-]+$/, "use letters, digits, _ . -"),
    modelEntrySchema,
  ),
  /** Model used when a request names none (default: the first). */
  default_model: z.string().optional(),
  /** Limits (see server/limits.ts). */
  limits: z.object({
    max_body_bytes: positive.optional(),
    max_pixels: positive.optional(),
    timeout_ms: positive.optional(),
    concurrency: positive.optional(),
    queue: z.number().int().nonnegative().optional(),
    retry_after_s: positive.optional(),
    max_internal_batch: positive.optional(),
    max_render_size: positive.optional(),
  }).strict().optional(),
  /** One JSON line per request on stderr. */
  log: z.boolean().optional(),
}).strict();

const LIMIT_KEYS: Record<string, keyof Limits> = {
  max_body_bytes: "maxBodyBytes",
  max_pixels: "maxPixels",
  timeout_ms: "timeoutMs",
  concurrency: "concurrency",
  queue: "queue",
  retry_after_s: "retryAfterS",
  max_internal_batch: "maxInternalBatch",
  max_render_size: "maxRenderSize",
};

/**
 * Parse a config file's YAML `text` into a {@linkcode HandlerConfig}; relative paths resolve
 * against `baseDir`. Errors read `server.yaml:4 models.emotion.sha256: must be 64 hex digits`.
 */
export function parseServerConfig(
  text: string,
  options: { file?: string; baseDir?: string } = {},
): HandlerConfig {
  const source = new PipelineSource(text, options.file ?? "server.yaml");
  const raw = source.toJS() ?? {};
  const parsed = serverConfigSchema.safeParse(raw);
  if (!parsed.success) throw source.zodError(parsed.error, []);
  const file = parsed.data;
  if (Object.keys(file.models).length === 0) {
    throw source.error(["models"], "no models: add at least one name → source");
  }
  if (file.default_model !== undefined && !file.models[file.default_model]) {
    throw source.error(
      ["default_model"],
      `"${file.default_model}" is not one of the models (${Object.keys(file.models).join(", ")})`,
    );
  }
  const baseDir = options.baseDir ?? ".";
  const models: Record<string, ModelConfig> = {};
  for (const [name, m] of Object.entries(file.models)) {
    const pre = imageParams.safeParse(m.preprocess ?? {});
    if (!pre.success) throw source.zodError(pre.error, ["models", name, "preprocess"]);
    models[name] = {
      source: resolvePath(m.source, baseDir),
      sha256: m.sha256,
      labels: typeof m.labels === "string" ? resolvePath(m.labels, baseDir) : m.labels,
      backend: m.backend,
      preprocess: m.preprocess,
    };
  }
  const limits: Partial<Record<keyof Limits, number>> = {};
  for (const [key, value] of Object.entries(file.limits ?? {})) {
    if (value !== undefined) limits[LIMIT_KEYS[key]] = value;
  }
  return { models, defaultModel: file.default_model, limits, log: file.log };
}
