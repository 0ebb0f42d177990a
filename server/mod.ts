/**
 * Lantern as an HTTP service: a Web-standard `Request → Response` handler for `Deno.serve`,
 * serverless and edge platforms, its OpenAPI document, limits and config file.
 *
 * ```ts
 * import { createHandler } from "./server/mod.ts";
 * const handler = createHandler({ models: { emotion: { source: "examples/models/emotion.onnx" } } });
 * Deno.serve({ port: 8000 }, handler);
 * ```
 *
 * @module
 */
export {
  createHandler,
  type HandlerConfig,
  type LanternHandler,
  type LogRecord,
  type ModelConfig,
  resultJson,
} from "./handler.ts";
export { DEFAULT_LIMITS, Gate, HttpError, type Limits, readBody } from "./limits.ts";
export {
  type JsonSchema,
  type MethodInfo,
  methodInfos,
  openApiDocument,
  type OpenApiOptions,
  paramsSchema,
} from "./openapi.ts";
export { parseServerConfig } from "./config.ts";
