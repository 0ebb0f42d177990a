/**
 * The OpenAPI 3.1 document of the HTTP service, generated from the zod schemas of the registered
 * methods, so `/v1/methods`, the document and the validation of requests never disagree.
 *
 * @module
 */
import { z } from "zod";
import type { MethodPlugin } from "../pipeline/plugin.ts";
import { pluginsOf } from "../pipeline/registry.ts";
import type { Limits } from "./limits.ts";

/** A JSON Schema object (draft 2020-12, as OpenAPI 3.1 uses). */
export type JsonSchema = Record<string, unknown>;

/** A method as `GET /v1/methods` lists it. */
export interface MethodInfo {
  /** Registered name. */
  readonly name: string;
  /** One line. */
  readonly description: string;
  /** Whether requests must carry an image (false for methods that synthesize their input). */
  readonly needs_image: boolean;
  /** JSON Schema of the method's parameters (the keys of `options` beside the reserved ones). */
  readonly params: JsonSchema;
}

/** Response formats of `POST /v1/explain`. */
export const FORMATS = ["png", "json", "npy"] as const;

const schemaCache = new WeakMap<object, JsonSchema>();

/** JSON Schema of a plugin's parameters, as a client writes them (defaults optional). */
export function paramsSchema(plugin: MethodPlugin): JsonSchema {
  let schema = schemaCache.get(plugin.params);
  if (!schema) {
    const raw = z.toJSONSchema(plugin.params as z.ZodType, {
      io: "input",
      unrepresentable: "any",
    }) as JsonSchema;
    const { $schema: _drop, ...rest } = raw;
    schema = rest;
    schemaCache.set(plugin.params, schema);
  }
  return schema;
}

/** Every registered method with its parameter schema, sorted by name. */
export function methodInfos(): MethodInfo[] {
  return (pluginsOf("method") as MethodPlugin[])
    .map((p) => ({
      name: p.name,
      description: p.description,
      needs_image: !p.synthesizesInput,
      params: paramsSchema(p),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema) => ({ "application/json": { schema } });
const error = (description: string, headers?: JsonSchema) => ({
  description,
  ...(headers ? { headers } : {}),
  content: json(ref("Error")),
});
const retryAfter = {
  "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer" } },
};

/** Options of {@linkcode openApiDocument}. */
export interface OpenApiOptions {
  /** Model names clients may pick. */
  readonly models: readonly string[];
  /** The limits in force (documented in the description). */
  readonly limits: Limits;
  /** Server URL, when known. */
  readonly serverUrl?: string;
}

/** The OpenAPI 3.1 document describing every endpoint, request and response of the service. */
export function openApiDocument(options: OpenApiOptions): JsonSchema {
  const methods = methodInfos();
  const { limits } = options;
  const methodParams = Object.fromEntries(
    methods.map((m) => [`params.${m.name}`, m.params]),
  );
  const prediction = {
    type: "object",
    required: ["index", "score", "probability"],
    properties: {
      index: { type: "integer", minimum: 0 },
      label: { type: "string" },
      score: { type: "number" },
      probability: { type: "number", minimum: 0, maximum: 1 },
    },
    additionalProperties: false,
  };
  const explainOptions = {
    type: "object",
    description:
      "Reserved keys below; every other key is a parameter of the chosen method, validated by " +
      "its schema (components.schemas['params.<method>'], also served by GET /v1/methods).",
    required: ["method"],
    properties: {
      method: { type: "string", enum: methods.map((m) => m.name) },
      model: { type: "string", enum: [...options.models] },
      format: { type: "string", enum: [...FORMATS], default: "png" },
      stream: { type: "string", enum: ["ndjson", "sse"] },
      row: { type: "integer", minimum: 0, description: "Row of the map drawn as PNG" },
      render: {
        type: "object",
        description: "Parameters of the heatmap (or grid) render: colormap, normalize, alpha, size",
      },
    },
    additionalProperties: true,
  };
  // Method parameters may be query parameters too; values are read as JSON where the
  // parameter is not a string (steps=16, relu=false, target=[1,2]).
  const query = ["method", "model", "format", "target", "layer", "stream", "row"].map((name) => ({
    name,
    in: "query",
    required: false,
    schema: { type: "string" },
  }));
  return {
    openapi: "3.1.0",
    info: {
      title: "Lantern",
      version: "0.1.0",
      description: "Explain what convolutional networks see. Limits: bodies up to " +
        `${limits.maxBodyBytes} bytes, images up to ${limits.maxPixels} pixels (checked from ` +
        `the header before decoding), ${limits.timeoutMs} ms per request, ${limits.concurrency} ` +
        `explanations at once with ${limits.queue} waiting; beyond that 503 with Retry-After.`,
    },
    ...(options.serverUrl ? { servers: [{ url: options.serverUrl }] } : {}),
    paths: {
      "/healthz": {
        get: {
          summary: "Liveness and load",
          responses: { "200": { description: "Serving", content: json(ref("Health")) } },
        },
      },
      "/v1/models": {
        get: {
          summary: "The models clients may pick (the server's allow-list)",
          responses: { "200": { description: "Models", content: json(ref("Models")) } },
        },
      },
      "/v1/methods": {
        get: {
          summary: "Explanation methods with the JSON Schema of their parameters",
          responses: { "200": { description: "Methods", content: json(ref("Methods")) } },
        },
      },
      "/openapi.json": {
        get: {
          summary: "This document",
          responses: {
            "200": { description: "OpenAPI 3.1", content: json({ type: "object" }) },
          },
        },
      },
      "/v1/explain": {
        post: {
          summary: "Explain one image with one method",
          description: "Send a multipart form (file field `image`, JSON field `options`) or the " +
            "raw image as the body with the options as query parameters. `format` picks a " +
            "heatmap PNG, JSON with the raw map, or the map as .npy. `Accept: " +
            "application/x-ndjson` (or stream=ndjson) streams progress lines, then the result; " +
            "`Accept: text/event-stream` (or stream=sse) does the same as server-sent events.",
          parameters: query,
          requestBody: {
            required: false,
            content: {
              "multipart/form-data": {
                schema: {
                  type: "object",
                  properties: {
                    image: { type: "string", contentMediaType: "application/octet-stream" },
                    options: { type: "string", contentMediaType: "application/json" },
                  },
                },
              },
              "image/png": { schema: { type: "string", contentMediaType: "image/png" } },
              "image/jpeg": { schema: { type: "string", contentMediaType: "image/jpeg" } },
              "application/octet-stream": {
                schema: { type: "string", contentMediaType: "application/octet-stream" },
              },
            },
          },
          responses: {
            "200": {
              description: "The explanation",
              content: {
                "image/png": { schema: { type: "string", contentMediaType: "image/png" } },
                "application/json": { schema: ref("ExplainResult") },
                "application/octet-stream": {
                  schema: { type: "string", contentMediaType: "application/octet-stream" },
                },
                "application/x-ndjson": { schema: ref("StreamLine") },
                "text/event-stream": { schema: { type: "string" } },
              },
            },
            "400": error("Bad request: unknown method or model, bad parameters, unreadable image"),
            "413": error("Body or image over the limits"),
            "415": error("Unsupported content type"),
            "503": error("Saturated or timed out; retry after Retry-After seconds", retryAfter),
            "500": error("Internal error"),
          },
        },
      },
    },
    components: {
      schemas: {
        Error: {
          type: "object",
          required: ["error", "status"],
          properties: { error: { type: "string" }, status: { type: "integer" } },
          additionalProperties: false,
        },
        Health: {
          type: "object",
          required: ["status", "running", "queued", "models"],
          properties: {
            status: { const: "ok" },
            running: { type: "integer", minimum: 0 },
            queued: { type: "integer", minimum: 0 },
            models: { type: "object", additionalProperties: { type: "boolean" } },
          },
          additionalProperties: false,
        },
        Models: {
          type: "object",
          required: ["models"],
          properties: {
            models: {
              type: "array",
              items: {
                type: "object",
                required: ["name", "default", "loaded"],
                properties: {
                  name: { type: "string" },
                  default: { type: "boolean" },
                  loaded: { type: "boolean" },
                  input_shape: { type: "array", items: { type: "integer" } },
                  classes: { type: "integer" },
                  labels: { type: "array", items: { type: "string" } },
                  backend: { type: "string" },
                },
                additionalProperties: false,
              },
            },
          },
          additionalProperties: false,
        },
        Methods: {
          type: "object",
          required: ["methods"],
          properties: {
            methods: {
              type: "array",
              items: {
                type: "object",
                required: ["name", "description", "needs_image", "params"],
                properties: {
                  name: { type: "string" },
                  description: { type: "string" },
                  needs_image: { type: "boolean" },
                  params: { type: "object" },
                },
                additionalProperties: false,
              },
            },
          },
          additionalProperties: false,
        },
        Prediction: prediction,
        ExplainOptions: explainOptions,
        ExplainResult: {
          type: "object",
          required: [
            "model",
            "method",
            "predictions",
            "targets",
            "space",
            "range",
            "backend",
            "timings",
            "map",
          ],
          properties: {
            model: { type: "string" },
            method: { type: "string" },
            predictions: {
              type: "array",
              description: "Top 5 classes of each image",
              items: { type: "array", items: ref("Prediction") },
            },
            targets: { type: "array", items: { type: "integer" } },
            images: { type: "array", items: { type: "integer" } },
            layer: { type: "string" },
            space: { type: "string", enum: ["input", "layer"] },
            range: { type: "array", items: { type: "number" }, minItems: 2, maxItems: 2 },
            backend: { type: "string" },
            timings: { type: "object", additionalProperties: { type: "number" } },
            info: { type: "object" },
            map: {
              type: "object",
              required: ["dims", "data"],
              properties: {
                dims: { type: "array", items: { type: "integer", minimum: 0 } },
                data: { type: "array", items: { type: ["number", "null"] } },
              },
              additionalProperties: false,
            },
            png: { type: "string", description: "Base64 PNG (streams with format png)" },
          },
          additionalProperties: false,
        },
        StreamLine: {
          oneOf: [
            {
              type: "object",
              required: ["progress"],
              properties: {
                progress: {
                  type: "object",
                  required: ["done", "total"],
                  properties: {
                    done: { type: "integer", minimum: 0 },
                    total: { type: "integer", minimum: 0 },
                    label: { type: "string" },
                  },
                  additionalProperties: false,
                },
              },
              additionalProperties: false,
            },
            {
              type: "object",
              required: ["result"],
              properties: { result: ref("ExplainResult") },
              additionalProperties: false,
            },
            ref("Error"),
          ],
        },
        ...methodParams,
      },
    },
  };
}
