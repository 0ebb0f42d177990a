/**
 * The scripting API: load a model once, then explain inputs with one method, as Captum's
 * `attribute` does — but from bytes, a `Blob`, a tensor or a path, with PNG and JSON renders in
 * memory and no file system needed.
 *
 * ```ts
 * import { explain, loadModel } from "./mod.ts";
 * const model = await loadModel("examples/models/emotion.onnx");
 * const r = await explain(model, await Deno.readFile("face.png"), { method: "gradcam" });
 * console.log(r.explanation.targets, r.map.dims);
 * await Deno.writeFile("face_gradcam.png", await r.png());
 * ```
 *
 * Web-standard only: paths are read through `Deno` when it exists (checked at run time), so the
 * module runs unchanged on edge runtimes with bytes, `Blob`s, tensors and URLs.
 *
 * @module
 */
import type { Target } from "./targets.ts";
import { topPredictions } from "./targets.ts";
import type { ProgressFn } from "./plugin.ts";
import type { MethodPlugin, PreprocessPlugin, RenderPlugin } from "./plugin.ts";
import { getPlugin } from "./registry.ts";
import { validateParams } from "./runner.ts";
import { LanternError, ParamError } from "./errors.ts";
import { zeroBatch } from "./batching.ts";
import type { Batch, Explanation, Model, Prediction } from "./types.ts";
import { type Tensor, toCpu } from "../kernels/tensor.ts";
import { DEFAULT_MAX_PIXELS, readImageHeader } from "../kernels/image_decode.ts";
import { openModel, type OpenModelOptions } from "../plugins/model/onnx_model.ts";
import {
  checkPin,
  findLabels,
  isUrl,
  loadLabels,
  loadModelBytes,
} from "../plugins/model/source.ts";
import { readInput } from "../plugins/preprocess/image.ts";
import type { Results } from "../plugins/render/json.ts";

/** One input to explain: encoded image bytes (PNG or JPEG), a `Blob`, a path, or a tensor. */
export type ExplainInput =
  | Uint8Array
  | ArrayBuffer
  | Blob
  | string
  | { readonly name: string; readonly bytes: Uint8Array }
  | Tensor;

/**
 * Options of {@linkcode explain}: the method, its target and layer, and any other parameter of
 * the method (e.g. `steps` for integrated gradients), validated by the method's schema.
 */
export interface ExplainOptions {
  /** Registered method name, e.g. `"gradcam"` (see `lantern methods`). */
  readonly method: string;
  /** Class index, `"top1"` (default), `"topK"`, or one entry per image. */
  readonly target?: Target;
  /** ONNX tensor the method looks at (CAM family, feature maps). */
  readonly layer?: string;
  /** Parameters of the `image` preprocess (`preset`, `size`, `mean`, …); default: the model's. */
  readonly preprocess?: Readonly<Record<string, unknown>>;
  /** Name of the input in results (default: the file name, else `input`). */
  readonly name?: string;
  /** Largest `width * height` accepted, read from the image header before decoding. */
  readonly maxPixels?: number;
  /** Stops the run between stages and at the method's next progress report. */
  readonly signal?: AbortSignal;
  /** Progress of long methods: `done` of `total` units. */
  readonly progress?: ProgressFn;
  /** Reads files named in parameters (e.g. an integrated-gradients baseline `.npy`). */
  readonly readFile?: (path: string) => Promise<Uint8Array>;
  /** Any other parameter of the method. */
  readonly [param: string]: unknown;
}

/** Options of {@linkcode ExplainResult.png}: the render's parameters, and which row to draw. */
export interface PngOptions {
  /** Row of the map to draw (an image, or an image's target with `topK`); default 0. */
  readonly row?: number;
  /** Parameters of the render (`heatmap`: `colormap`, `normalize`, `alpha`, `size`, …). */
  readonly [param: string]: unknown;
}

/** What {@linkcode explain} returns. */
export interface ExplainResult {
  /** The method's result (its `map` on the CPU). */
  readonly explanation: Explanation;
  /** The attribution map, `explanation.map`. */
  readonly map: Tensor;
  /** Top-5 predictions per image. */
  readonly predictions: readonly (readonly Prediction[])[];
  /** The preprocessed inputs. */
  readonly batch: Batch;
  /**
   * One PNG of one row: a heatmap over the image for one-channel and input-space maps, a grid
   * for multi-channel layer maps, the picture itself for methods that synthesize their input.
   */
  png(options?: PngOptions): Promise<Uint8Array>;
  /** Predictions and explanation metadata per image, as the `json` render writes them. */
  json(): Promise<Results>;
}

/** What went wrong in {@linkcode explain}, for callers that answer differently (HTTP status). */
export type ExplainErrorKind = "method" | "params" | "input" | "limit" | "aborted";

/** A one-line error from {@linkcode explain} that says whose fault it is. */
export class ExplainError extends LanternError {
  /** Make an error of `kind`. */
  constructor(readonly kind: ExplainErrorKind, message: string) {
    super(message);
    this.name = "ExplainError";
  }
}

/**
 * Keys of {@linkcode ExplainOptions} that are not method parameters: `method` and the caller's own
 * settings (`preprocess`, `signal`, …).
 */
export const RESERVED_OPTIONS: ReadonlySet<string> = new Set([
  "method",
  "preprocess",
  "name",
  "maxPixels",
  "signal",
  "progress",
  "readFile",
]);

function checkAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const why = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
  throw new ExplainError("aborted", `Cannot finish explanation: it was stopped (${why})`);
}

function isTensor(value: unknown): value is Tensor {
  return typeof value === "object" && value !== null && "dims" in value && "data" in value &&
    (value as Tensor).data instanceof Float32Array;
}

/** Look up a method and validate its parameters; throws {@linkcode ExplainError}. */
export function methodOf(
  name: string,
  raw: Readonly<Record<string, unknown>>,
): { plugin: MethodPlugin; params: unknown } {
  let plugin: MethodPlugin;
  try {
    plugin = getPlugin("method", name) as MethodPlugin;
  } catch (e) {
    throw new ExplainError("method", (e as Error).message);
  }
  const params = validateParams(plugin, { ...raw }, (path, message) => {
    throw new ExplainError(
      "params",
      `Cannot explain with ${name}: ${path.length ? `${path.join(".")}: ` : ""}${message}`,
    );
  });
  return { plugin, params };
}

/** Split {@linkcode ExplainOptions} into the method's parameters and the rest. */
export function methodParams(options: ExplainOptions): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(options).filter(([k, v]) => !RESERVED_OPTIONS.has(k) && v !== undefined),
  );
}

/** A model-input tensor `[N,C,H,W]` as a batch whose rows are named `input` or `input0`, …. */
export function tensorBatch(input: Tensor, name?: string): Batch {
  const n = input.dims[0];
  const base = name ?? "input";
  return {
    tensor: input,
    names: Array.from({ length: n }, (_, i) => n === 1 ? base : `${base}${i}`),
  };
}

/**
 * An input as named bytes: bytes and `ArrayBuffer`s are named `name` (or `input`), a `File` keeps
 * its name, a path is read (where there is a file system).
 */
export async function toSource(
  input: Exclude<ExplainInput, Tensor>,
  name: string | undefined,
): Promise<{ name: string; bytes: Uint8Array }> {
  if (input instanceof Uint8Array) return { name: name ?? "input", bytes: input };
  if (input instanceof ArrayBuffer) return { name: name ?? "input", bytes: new Uint8Array(input) };
  if (typeof Blob !== "undefined" && input instanceof Blob) {
    const fileName = (input as { name?: unknown }).name;
    return {
      name: name ?? (typeof fileName === "string" && fileName ? fileName : "input"),
      bytes: new Uint8Array(await input.arrayBuffer()),
    };
  }
  if (typeof input === "string") {
    const read = await readInput(input).catch((e) => {
      throw new ExplainError("input", (e as Error).message);
    });
    return { name: name ?? read.name, bytes: read.bytes };
  }
  const named = input as { name: string; bytes: Uint8Array };
  return { name: name ?? named.name, bytes: named.bytes };
}

/** Check an encoded image's declared size against `maxPixels` without decoding it. */
export function checkImageSize(bytes: Uint8Array, name: string, maxPixels: number): void {
  let header;
  try {
    header = readImageHeader(bytes, name);
  } catch (e) {
    throw new ExplainError("input", (e as Error).message);
  }
  const pixels = header.width * header.height;
  if (pixels > maxPixels) {
    throw new ExplainError(
      "limit",
      `Cannot decode "${name}": ${header.width}x${header.height} is ${pixels} pixels, over the limit of ${maxPixels} — send a smaller image`,
    );
  }
}

async function makeBatch(
  model: Model,
  input: ExplainInput | readonly ExplainInput[] | undefined,
  options: ExplainOptions,
  plugin: MethodPlugin,
): Promise<Batch> {
  if (input === undefined) {
    if (!plugin.synthesizesInput) {
      throw new ExplainError("input", `Cannot explain with ${plugin.name}: no input given`);
    }
    return zeroBatch(model, options.name ?? plugin.name);
  }
  if (isTensor(input)) return tensorBatch(input, options.name);
  const list = (Array.isArray(input) ? input : [input]) as ExplainInput[];
  if (list.length === 0) throw new ExplainError("input", "Cannot explain: no input given");
  const sources = [];
  for (const item of list) {
    if (isTensor(item)) {
      throw new ExplainError("input", "Cannot explain a list with tensors: pass one [N,C,H,W]");
    }
    const source = await toSource(item, list.length === 1 ? options.name : undefined);
    checkImageSize(source.bytes, source.name, options.maxPixels ?? DEFAULT_MAX_PIXELS);
    sources.push(source);
  }
  const pre = getPlugin("preprocess", "image") as PreprocessPlugin;
  const params = validateParams(pre, { ...(options.preprocess ?? {}) }, (path, message) => {
    throw new ExplainError("params", `Cannot preprocess: preprocess.${path.join(".")}: ${message}`);
  });
  try {
    return await pre.run({ sources, model }, params);
  } catch (e) {
    if (e instanceof ParamError) {
      throw new ExplainError("params", `Cannot preprocess: preprocess.${e.key}: ${e.message}`);
    }
    if (e instanceof LanternError) throw new ExplainError("input", e.message);
    throw e;
  }
}

/**
 * Explain `input` with one method on a loaded `model`: preprocess it with the model's own
 * recipe (or `options.preprocess`), run the method with its parameters validated by its schema,
 * and return the map with predictions and in-memory renders.
 *
 * `input` may be omitted for methods that make their own input (`activation-max`).
 *
 * @throws {ExplainError} for an unknown method, bad parameters, an unreadable or too large input,
 *   or an aborted run; other errors are bugs or model failures.
 */
export async function explain(
  model: Model,
  input: ExplainInput | readonly ExplainInput[] | undefined,
  options: ExplainOptions,
): Promise<ExplainResult> {
  const { signal } = options;
  const { plugin, params } = methodOf(options.method, methodParams(options));
  checkAborted(signal);
  const batch = await makeBatch(model, input, options, plugin);
  checkAborted(signal);
  let logits: Tensor;
  try {
    logits = (await model.run(batch.tensor))[model.outputName];
  } catch (e) {
    if (e instanceof LanternError) throw new ExplainError("input", e.message);
    throw e;
  }
  const predictions = topPredictions(logits, { topk: 5, labels: model.labels });
  checkAborted(signal);
  // Methods report progress between batches: the one place a long run can be stopped.
  const progress: ProgressFn = (done, total, label) => {
    checkAborted(signal);
    options.progress?.(done, total, label);
  };
  let result: Explanation;
  try {
    result = await plugin.run(
      { model, batch, logits, progress, readFile: options.readFile },
      params as never,
    );
  } catch (e) {
    if (e instanceof ExplainError) throw e;
    if (e instanceof ParamError) {
      throw new ExplainError(
        "params",
        `Cannot explain with ${plugin.name}: ${e.key}: ${e.message}`,
      );
    }
    if (e instanceof LanternError) throw new ExplainError("params", e.message);
    throw e;
  }
  const map = await toCpu(result.map);
  const explanation: Explanation = { ...result, map };
  const renderInput = { batch, explanations: [explanation], predictions, model };
  return {
    explanation,
    map,
    predictions,
    batch,
    async png(pngOptions: PngOptions = {}) {
      const { row = 0, ...raw } = pngOptions;
      const name = plugin.synthesizesInput
        ? "image"
        : explanation.space === "layer" && map.dims.length === 4 && map.dims[1] !== 1
        ? "grid"
        : "heatmap";
      const render = getPlugin("render", name) as RenderPlugin;
      const renderParams = validateParams(render, raw, (path, message) => {
        throw new ExplainError("params", `Cannot render ${name}: ${path.join(".")}: ${message}`);
      });
      let files;
      try {
        files = await render.run(renderInput, renderParams);
      } catch (e) {
        if (e instanceof LanternError) throw new ExplainError("params", e.message);
        throw e;
      }
      if (!Number.isInteger(row) || row < 0 || row >= files.length) {
        throw new ExplainError(
          "params",
          `Cannot render row ${row}: the map has ${files.length} row(s), expected 0–${
            files.length - 1
          }`,
        );
      }
      return files[row].bytes;
    },
    async json() {
      const render = getPlugin("render", "json") as RenderPlugin;
      const [file] = await render.run(renderInput, render.params.parse({}));
      return JSON.parse(new TextDecoder().decode(file.bytes)) as Results;
    },
  };
}

/** Options of {@linkcode loadModel}. */
export interface LoadModelOptions extends Omit<OpenModelOptions, "labels"> {
  /** Expected sha256 of the model file (hex); other bytes are refused. */
  readonly sha256?: string;
  /** Class names, or (with `Deno`) a labels file path; default: a `*labels*.txt` beside a path. */
  readonly labels?: readonly string[] | string;
  /** Passed to `fetch` for URLs. */
  readonly signal?: AbortSignal;
}

/**
 * Load an ONNX classifier from a path (needs `Deno`), an `https://` URL (fetched into memory,
 * never written to disk), bytes or a `Blob`, and open it with {@linkcode openModel}.
 */
export async function loadModel(
  source: string | URL | Uint8Array | ArrayBuffer | Blob,
  options: LoadModelOptions = {},
): Promise<Model> {
  const text = source instanceof URL ? source.href : typeof source === "string" ? source : "";
  const name = options.name ?? (text ? text.split(/[\\/]/).pop() || "model" : "model");
  let bytes: Uint8Array;
  if (text && !isUrl(text) && typeof Deno === "undefined") {
    throw new LanternError(
      `Cannot load model "${text}": file paths need Deno, pass bytes, a Blob or an https URL`,
    );
  } else if (text) bytes = await loadModelBytes(text, { cache: false, signal: options.signal });
  else if (source instanceof Uint8Array) bytes = source;
  else if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  else bytes = new Uint8Array(await (source as Blob).arrayBuffer());
  await checkPin(`model "${name}"`, bytes, { sha256: options.sha256 });
  let labels: readonly string[] | undefined;
  if (typeof options.labels === "string") labels = await loadLabels(options.labels);
  else if (options.labels) labels = options.labels;
  else if (text && !isUrl(text) && typeof Deno !== "undefined") labels = await findLabels(text);
  return await openModel(bytes, { ...options, name, labels });
}
