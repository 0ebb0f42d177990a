/**
 * The HTTP service as one Web-standard function, `Request → Response`: the same handler runs
 * under `Deno.serve` (`lantern serve`) and on serverless and edge platforms. No `Deno` APIs and
 * no disk writes: models come from the config's allow-list as bytes, URLs (fetched into memory)
 * or, where a file system exists, paths.
 *
 * Routes: `POST /v1/explain`, `GET /v1/models`, `GET /v1/methods`, `GET /healthz`,
 * `GET /openapi.json`. Every error is JSON `{ "error": "...", "status": n }`.
 *
 * @module
 */
import "../plugins/mod.ts";
import {
  explain,
  ExplainError,
  type ExplainOptions,
  type ExplainResult,
  loadModel,
  methodOf,
  RESERVED_OPTIONS,
} from "../pipeline/explain.ts";
import type { MethodPlugin } from "../pipeline/plugin.ts";
import { getPlugin } from "../pipeline/registry.ts";
import type { Model } from "../pipeline/types.ts";
import { LanternError } from "../pipeline/errors.ts";
import type { BackendRequest } from "../kernels/backend.ts";
import { encodeNpy } from "../kernels/npy.ts";
import { jsonSafe } from "../plugins/render/json.ts";
import { DEFAULT_LIMITS, Gate, HttpError, type Limits, readBody } from "./limits.ts";
import { FORMATS, type JsonSchema, methodInfos, openApiDocument, paramsSchema } from "./openapi.ts";

/** One model of the allow-list. */
export interface ModelConfig {
  /** ONNX bytes, a `Blob`, an `https://` URL, or a path (where `Deno` exists). */
  readonly source: string | URL | Uint8Array | ArrayBuffer | Blob;
  /** Expected sha256 of the file (hex). */
  readonly sha256?: string;
  /** Class names, or a labels file path. */
  readonly labels?: readonly string[] | string;
  /** Which backend runs the model, a {@linkcode BackendRequest}; default `auto`. */
  readonly backend?: BackendRequest;
  /** Parameters of the `image` preprocess for this model (clients cannot set them). */
  readonly preprocess?: Readonly<Record<string, unknown>>;
}

/** A structured log record: one per request. */
export type LogRecord = Readonly<Record<string, unknown>>;

/** Configuration of {@linkcode createHandler}. */
export interface HandlerConfig {
  /** The models clients may pick, by name; nothing else is ever loaded. */
  readonly models: Readonly<Record<string, ModelConfig>>;
  /** The model used when a request names none (default: the only one, or the first). */
  readonly defaultModel?: string;
  /** Overrides of {@linkcode DEFAULT_LIMITS}. */
  readonly limits?: Partial<Limits>;
  /**
   * Request logs: `true` (default) writes one JSON line per request to `console.error`, `false`
   * none, a function receives each record.
   */
  readonly log?: boolean | ((record: LogRecord) => void);
}

/** The service: call it with a `Request`; `ready` loads every model, `dispose` frees them. */
export interface LanternHandler {
  /** Answer one request. */
  (request: Request): Promise<Response>;
  /** Load every model of the allow-list now instead of on first use. */
  ready(): Promise<void>;
  /** Free the loaded models. */
  dispose(): Promise<void>;
  /** The limits in force. */
  readonly limits: Limits;
}

const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "application/octet-stream"]);
/** Keys of `options` the service reads itself; the rest are the method's parameters. */
const SERVICE_KEYS = new Set(["method", "model", "format", "stream", "row", "render"]);
type Format = typeof FORMATS[number];

/** Body sizes of the responses made here, for the request log. */
const sizes = new WeakMap<Response, number>();

function bytesResponse(
  status: number,
  bytes: Uint8Array,
  headers: Readonly<Record<string, string>>,
): Response {
  const response = new Response(bytes as Uint8Array<ArrayBuffer>, { status, headers });
  sizes.set(response, bytes.length);
  return response;
}

function jsonResponse(
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): Response {
  return bytesResponse(status, new TextEncoder().encode(JSON.stringify(body)), {
    "content-type": "application/json",
    ...headers,
  });
}

function errorResponse(e: HttpError): Response {
  return jsonResponse(e.status, { error: e.message, status: e.status }, e.headers);
}

const STATUS_OF: Record<ExplainError["kind"], number> = {
  method: 400,
  params: 400,
  input: 400,
  limit: 413,
  aborted: 503,
};

/** The JSON form of a result: predictions, metadata and the raw map. */
export function resultJson(model: string, r: ExplainResult): Record<string, unknown> {
  const e = r.explanation;
  const data = Array.from(r.map.data, (v) => Number.isFinite(v) ? v : null);
  const info = e.info === undefined ? undefined : jsonSafe(e.info);
  return {
    model,
    method: e.method,
    predictions: jsonSafe(r.predictions),
    targets: [...e.targets],
    ...(e.images ? { images: [...e.images] } : {}),
    ...(e.layer !== undefined ? { layer: e.layer } : {}),
    space: e.space,
    range: jsonSafe([...e.range]),
    backend: e.backend,
    timings: { ...e.timings },
    ...(info && typeof info === "object" && !Array.isArray(info) ? { info } : {}),
    map: { dims: [...r.map.dims], data },
  };
}

function base64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

/** A query value as the method's schema wants it: strings stay text, the rest is read as JSON. */
function coerce(value: string, schema: JsonSchema | undefined): unknown {
  const type = schema?.type;
  const isText = type === "string" ||
    (Array.isArray(schema?.enum) && schema.enum.every((v) => typeof v === "string"));
  if (isText) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

interface ParsedRequest {
  readonly image?: Uint8Array;
  readonly imageName: string;
  readonly options: Record<string, unknown>;
}

async function parseRequest(request: Request, limits: Limits): Promise<ParsedRequest> {
  const fullType = request.headers.get("content-type") ?? "";
  const type = fullType.split(";")[0].trim().toLowerCase();
  if (type && type !== "multipart/form-data" && !IMAGE_TYPES.has(type)) {
    throw new HttpError(
      415,
      `Cannot read request: content type "${type}" is not supported, expected multipart/form-data, image/png, image/jpeg or application/octet-stream`,
    );
  }
  const body = await readBody(request, limits.maxBodyBytes);
  if (!type && body.length > 0) {
    throw new HttpError(
      415,
      "Cannot read request: the body has no content type, expected multipart/form-data, image/png, image/jpeg or application/octet-stream",
    );
  }
  const url = new URL(request.url);
  const query: Record<string, string> = Object.fromEntries(url.searchParams);
  let options: Record<string, unknown> = {};
  let image: Uint8Array | undefined = body.length ? body : undefined;
  let imageName = "image";
  if (type === "multipart/form-data") {
    let form: FormData;
    try {
      form = await new Response(body as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": fullType },
      }).formData();
    } catch (e) {
      throw new HttpError(400, `Cannot read multipart form: ${(e as Error).message}`);
    }
    const file = form.get("image");
    if (typeof file === "string") {
      throw new HttpError(400, 'Cannot read form field "image": expected a file, got text');
    }
    image = file && file.size > 0 ? new Uint8Array(await file.arrayBuffer()) : undefined;
    if (file?.name) imageName = file.name;
    const field = form.get("options");
    if (field !== null) {
      const text = typeof field === "string" ? field : await field.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new HttpError(400, `Cannot parse form field "options": ${(e as Error).message}`);
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new HttpError(400, 'Cannot use form field "options": expected a JSON object');
      }
      options = parsed as Record<string, unknown>;
    }
  }
  // Query parameters fill what the options field left unset.
  const method = options.method ?? query.method;
  const schema = typeof method === "string"
    ? methodSchema(method)?.properties as Record<string, JsonSchema> | undefined
    : undefined;
  for (const [key, value] of Object.entries(query)) {
    if (key in options) continue;
    if (key === "render" || key === "row") options[key] = coerce(value, undefined);
    else if (SERVICE_KEYS.has(key)) options[key] = value;
    else options[key] = coerce(value, schema?.[key]);
  }
  return { image, imageName, options };
}

function methodSchema(name: string): JsonSchema | undefined {
  try {
    return paramsSchema(getPlugin("method", name) as MethodPlugin);
  } catch {
    return undefined; // an unknown method is reported once the options are complete
  }
}

/**
 * Make the service handler. Models load on first use (or all at once with `ready()`), each
 * once; clients choose among them by name only, so no request can make the server read a path
 * or fetch a URL.
 */
export function createHandler(config: HandlerConfig): LanternHandler {
  const limits: Limits = { ...DEFAULT_LIMITS, ...config.limits };
  const names = Object.keys(config.models);
  if (names.length === 0) {
    throw new LanternError("Cannot start the service: no models configured, add one to models");
  }
  const defaultModel = config.defaultModel ?? names[0];
  if (!Object.hasOwn(config.models, defaultModel)) {
    throw new LanternError(
      `Cannot start the service: default model "${defaultModel}" is not one of ${names.join(", ")}`,
    );
  }
  const gate = new Gate(limits.concurrency, limits.queue);
  const loading = new Map<string, Promise<Model>>();
  const loaded = new Map<string, Model>();
  const log = config.log === false
    ? undefined
    : typeof config.log === "function"
    ? config.log
    : (record: LogRecord) => console.error(JSON.stringify(record));
  let openapi: JsonSchema | undefined;

  function model(name: string): Promise<Model> {
    let p = loading.get(name);
    if (!p) {
      const c = config.models[name];
      p = loadModel(c.source, {
        name,
        sha256: c.sha256,
        labels: c.labels,
        backend: c.backend,
      }).then((m) => {
        loaded.set(name, m);
        return m;
      });
      loading.set(name, p);
      p.catch(() => loading.delete(name));
    }
    return p;
  }

  function models(): Promise<Response> {
    const list = names.map((name) => {
      const m = loaded.get(name);
      return {
        name,
        default: name === defaultModel,
        loaded: Boolean(m),
        ...(m
          ? {
            input_shape: [...m.inputShape],
            ...(m.labels ? { classes: m.labels.length, labels: [...m.labels] } : {}),
            backend: m.backend.name,
          }
          : {}),
      };
    });
    return Promise.resolve(jsonResponse(200, { models: list }));
  }

  function refuse(): HttpError {
    return new HttpError(
      503,
      `Cannot take request: ${gate.running} explanation(s) running and ${gate.waiting} waiting, the limit — retry after ${limits.retryAfterS} s`,
      { "retry-after": String(limits.retryAfterS) },
    );
  }

  async function explainRoute(request: Request, note: Record<string, unknown>): Promise<Response> {
    const started = Date.now();
    const parsed = await parseRequest(request, limits);
    note.bytes_in = parsed.image?.length ?? 0;
    const { options } = parsed;
    const methodName = options.method;
    if (typeof methodName !== "string" || !methodName) {
      throw new HttpError(
        400,
        'Cannot explain: missing "method" (in options or the query), see GET /v1/methods',
      );
    }
    note.explain = methodName;
    const modelName = options.model ?? defaultModel;
    if (typeof modelName !== "string" || !Object.hasOwn(config.models, modelName)) {
      throw new HttpError(
        400,
        `Cannot explain with model "${modelName}": not one of this server's models (${
          names.join(", ")
        })`,
      );
    }
    note.model = modelName;
    const format = options.format ?? "png";
    if (!FORMATS.includes(format as Format)) {
      throw new HttpError(
        400,
        `Cannot explain: format "${format}" is not one of ${FORMATS.join(", ")}`,
      );
    }
    const accept = request.headers.get("accept") ?? "";
    const stream = options.stream ??
      (accept.includes("application/x-ndjson")
        ? "ndjson"
        : accept.includes("text/event-stream")
        ? "sse"
        : undefined);
    if (stream !== undefined && stream !== "ndjson" && stream !== "sse") {
      throw new HttpError(400, `Cannot explain: stream "${stream}" is not ndjson or sse`);
    }
    const render = options.render ?? {};
    if (typeof render !== "object" || render === null || Array.isArray(render)) {
      throw new HttpError(400, "Cannot explain: render must be an object of render parameters");
    }
    const size = (render as Record<string, unknown>).size;
    if (typeof size === "number" && size > limits.maxRenderSize) {
      throw new HttpError(
        400,
        `Cannot explain: render.size ${size} is over the limit of ${limits.maxRenderSize}`,
      );
    }
    const row = options.row ?? 0;
    const params: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(options)) {
      if (SERVICE_KEYS.has(key)) continue;
      // Only the server sets the non-parameter keys of ExplainOptions (`method` was read above).
      if (RESERVED_OPTIONS.has(key)) {
        throw new HttpError(
          400,
          `Cannot explain: "${key}" is set by the server, not by requests — remove it`,
        );
      }
      params[key] = value;
    }
    const batchSize = params.internal_batch;
    if (typeof batchSize === "number" && batchSize > limits.maxInternalBatch) {
      throw new HttpError(
        400,
        `Cannot explain: internal_batch ${batchSize} is over the limit of ${limits.maxInternalBatch}`,
      );
    }
    let plugin: MethodPlugin;
    try {
      // Validate before queueing, so bad requests never take a slot.
      plugin = methodOf(methodName, params).plugin;
    } catch (e) {
      if (e instanceof ExplainError) throw new HttpError(STATUS_OF[e.kind], e.message);
      throw e;
    }
    if (!parsed.image && !plugin.synthesizesInput) {
      throw new HttpError(
        400,
        `Cannot explain with ${methodName}: no image, send it as the body or the form field "image"`,
      );
    }
    const entered = gate.enter();
    if (!entered) throw refuse();

    const stop = new AbortController();
    const remaining = Math.max(0, limits.timeoutMs - (Date.now() - started));
    const timer = setTimeout(
      () => stop.abort(new Error(`timed out after ${limits.timeoutMs} ms`)),
      remaining,
    );
    // Not request.signal: Deno.serve aborts it after every response, and a client that leaves a
    // stream is seen by the stream's cancel.
    const signal = stop.signal;
    const modelConfig = config.models[modelName];
    const run = async (progress?: ExplainOptions["progress"]) => {
      const release = await entered;
      try {
        if (signal.aborted) throw new ExplainError("aborted", "Cannot start: request timed out");
        const m = await model(modelName);
        const deadline = started + limits.timeoutMs;
        const result = await explain(m, parsed.image, {
          ...params,
          method: methodName,
          name: parsed.imageName,
          preprocess: modelConfig.preprocess,
          maxPixels: limits.maxPixels,
          signal,
          progress: (done, total, label) => {
            // The clock is checked here too, should a method hold the event loop regardless.
            if (Date.now() > deadline) {
              stop.abort(new Error(`timed out after ${limits.timeoutMs} ms`));
            }
            progress?.(done, total, label);
          },
        });
        const png = format === "png"
          ? await result.png({ ...(render as Record<string, unknown>), row: row as number })
          : undefined;
        return { result, png };
      } finally {
        release();
        clearTimeout(timer);
      }
    };
    const toHttp = (e: unknown): HttpError => {
      if (e instanceof HttpError) return e;
      if (e instanceof ExplainError) {
        const headers: Record<string, string> = e.kind === "aborted"
          ? { "retry-after": String(limits.retryAfterS) }
          : {};
        return new HttpError(STATUS_OF[e.kind], e.message, headers);
      }
      note.internal = String((e as Error)?.stack ?? e);
      return new HttpError(500, `Cannot explain: internal error (${(e as Error)?.message ?? e})`);
    };

    if (stream) {
      const cancel = () => stop.abort(new Error("the client closed the stream"));
      return streamed(stream, run, { modelName, format: format as Format, toHttp, note, cancel });
    }

    const job = run();
    // The slot stays taken until the work really ends, even when the answer is a timeout.
    const aborted = new Promise<never>((_, reject) => {
      const fail = () =>
        reject(new ExplainError("aborted", `Cannot finish explanation: ${why(signal)}`));
      if (signal.aborted) fail();
      else signal.addEventListener("abort", fail, { once: true });
    });
    let out: Awaited<typeof job>;
    try {
      out = await Promise.race([job, aborted]);
    } catch (e) {
      job.catch(() => {});
      throw toHttp(e);
    }
    const { result, png } = out;
    const e = result.explanation;
    const headers = {
      "x-lantern-model": modelName,
      "x-lantern-method": methodName,
      "x-lantern-targets": e.targets.join(","),
    };
    if (format === "png") {
      return bytesResponse(200, png!, { "content-type": "image/png", ...headers });
    }
    if (format === "npy") {
      return bytesResponse(200, encodeNpy(result.map), {
        "content-type": "application/octet-stream",
        ...headers,
      });
    }
    return jsonResponse(200, resultJson(modelName, result), headers);
  }

  interface StreamContext {
    modelName: string;
    format: Format;
    toHttp: (e: unknown) => HttpError;
    note: Record<string, unknown>;
    cancel: () => void;
  }

  function streamed(
    kind: "ndjson" | "sse",
    run: (
      progress: ExplainOptions["progress"],
    ) => Promise<{ result: ExplainResult; png?: Uint8Array }>,
    ctx: StreamContext,
  ): Response {
    const encoder = new TextEncoder();
    let closed = false;
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        const send = (event: string, value: unknown) => {
          if (closed) return;
          const text = kind === "ndjson"
            ? `${JSON.stringify({ [event]: value })}\n`
            : `event: ${event}\ndata: ${JSON.stringify(value)}\n\n`;
          try {
            const bytes = encoder.encode(text);
            ctx.note.bytes_out = (ctx.note.bytes_out as number ?? 0) + bytes.length;
            controller.enqueue(bytes);
          } catch {
            closed = true;
          }
        };
        let last = 0;
        try {
          const { result, png } = await run((done, total, label) => {
            const now = Date.now();
            if (done < total && now - last < 50) return;
            last = now;
            send("progress", { done, total, ...(label ? { label } : {}) });
          });
          const json = resultJson(ctx.modelName, result);
          send("result", png ? { ...json, png: base64(png) } : json);
          ctx.note.status = 200;
        } catch (e) {
          const err = ctx.toHttp(e);
          ctx.note.status = err.status;
          ctx.note.error = err.message;
          if (kind === "ndjson") {
            if (!closed) {
              controller.enqueue(
                encoder.encode(`${JSON.stringify({ error: err.message, status: err.status })}\n`),
              );
            }
          } else send("error", { error: err.message, status: err.status });
        }
        if (!closed) controller.close();
        closed = true;
        (ctx.note.finish as (() => void) | undefined)?.();
      },
      cancel() {
        closed = true;
        ctx.cancel();
      },
    });
    ctx.note.streaming = true;
    return new Response(body, {
      headers: {
        "content-type": kind === "ndjson" ? "application/x-ndjson" : "text/event-stream",
        "cache-control": "no-store",
      },
    });
  }

  async function route(request: Request, note: Record<string, unknown>): Promise<Response> {
    const url = new URL(request.url);
    const routes: Record<string, Record<string, () => Promise<Response>>> = {
      "/healthz": {
        GET: () =>
          Promise.resolve(jsonResponse(200, {
            status: "ok",
            running: gate.running,
            queued: gate.waiting,
            models: Object.fromEntries(names.map((n) => [n, loaded.has(n)])),
          })),
      },
      "/v1/models": { GET: models },
      "/v1/methods": {
        GET: () => Promise.resolve(jsonResponse(200, { methods: methodInfos() })),
      },
      "/openapi.json": {
        GET: () => {
          openapi ??= openApiDocument({ models: names, limits });
          return Promise.resolve(jsonResponse(200, openapi));
        },
      },
      "/v1/explain": { POST: () => explainRoute(request, note) },
    };
    const handlers = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined;
    if (!handlers) {
      throw new HttpError(
        404,
        `Cannot find ${url.pathname}: routes are ${Object.keys(routes).join(", ")}`,
      );
    }
    const handle = Object.hasOwn(handlers, request.method) ? handlers[request.method] : undefined;
    if (!handle) {
      const allow = Object.keys(handlers).join(", ");
      throw new HttpError(
        405,
        `Cannot ${request.method} ${url.pathname}: allowed ${allow}`,
        { allow },
      );
    }
    return await handle();
  }

  const handler = async (request: Request): Promise<Response> => {
    const t0 = performance.now();
    const url = new URL(request.url);
    const note: Record<string, unknown> = {};
    let response: Response;
    try {
      response = await route(request, note);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(
        500,
        `Cannot answer ${url.pathname}: internal error (${(e as Error)?.message ?? e})`,
      );
      if (!(e instanceof HttpError)) note.internal = String((e as Error)?.stack ?? e);
      note.error = err.message;
      response = errorResponse(err);
    }
    if (log) {
      const write = () => {
        const { finish: _f, streaming: _s, ...rest } = note;
        log({
          time: new Date().toISOString(),
          level: (note.status as number ?? response.status) >= 500 ? "error" : "info",
          method: request.method,
          path: url.pathname,
          status: note.status ?? response.status,
          ms: Math.round((performance.now() - t0) * 10) / 10,
          bytes_out: sizes.get(response) ?? note.bytes_out,
          ...rest,
        });
      };
      if (note.streaming) note.finish = write;
      else write();
    }
    return response;
  };

  return Object.assign(handler, {
    limits,
    async ready() {
      await Promise.all(names.map(model));
    },
    async dispose() {
      const all = [...loaded.values()];
      loaded.clear();
      loading.clear();
      for (const m of all) await m.dispose();
    },
  });
}

function why(signal: AbortSignal): string {
  const r = signal.reason;
  return r instanceof Error ? r.message : String(r ?? "aborted");
}
