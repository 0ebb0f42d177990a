/**
 * One definition shape for the four plugin kinds — preprocess, model, method, render — and the
 * `define*` helpers that built-ins and user plugins both use.
 *
 * @module
 */
import type { z } from "zod";
import type { Batch, Explanation, Model, OutputFile, Prediction } from "./types.ts";

/** The four kinds of plugins, in pipeline order. */
export const PLUGIN_KINDS = ["preprocess", "model", "method", "render"] as const;
/** One of {@linkcode PLUGIN_KINDS}. */
export type PluginKind = typeof PLUGIN_KINDS[number];

/** Reports progress of a long run: `done` out of `total` units. */
export type ProgressFn = (done: number, total: number, label?: string) => void;

/** What a model plugin receives. */
export interface ModelInput {
  /** Directory relative paths are resolved against (the pipeline file's). */
  readonly baseDir: string;
}

/** What a preprocess plugin receives. */
export interface PreprocessInput {
  /** Input files, globs already expanded, or raw bytes with a name. */
  readonly sources: readonly (string | { name: string; bytes: Uint8Array })[];
  /** The loaded model, for its input shape. */
  readonly model: Model;
}

/** A class target: an index, `"top1"`/`"topK"`, or one entry per image. */
export type TargetSpec = number | string | readonly (number | string)[];

/** What a method plugin receives. */
export interface MethodInput {
  /** The model to explain. */
  readonly model: Model;
  /** The preprocessed inputs. */
  readonly batch: Batch;
  /** The model's class scores for the batch, `[N,K]`, computed once by the runner. */
  readonly logits: import("../kernels/tensor.ts").Tensor;
  /** Reports progress for long runs. */
  readonly progress?: ProgressFn;
  /**
   * Reads a file named in the method's parameters (e.g. a baseline `.npy`), resolved against the
   * pipeline file; absent where there is no file system (edge runtimes) and for sandboxed plugins.
   */
  readonly readFile?: (path: string) => Promise<Uint8Array>;
}

/** What a render plugin receives. */
export interface RenderInput {
  /** The inputs that were explained. */
  readonly batch: Batch;
  /** Every method's result, in pipeline order. */
  readonly explanations: readonly Explanation[];
  /** Top predictions per image. */
  readonly predictions: readonly (readonly Prediction[])[];
  /** The model, for labels and backend. */
  readonly model: Model;
}

/** The shape shared by every plugin. */
export interface Plugin<K extends PluginKind, I, O, P = unknown> {
  /** Registered name, e.g. `"cam"`. */
  readonly name: string;
  /** Which stage it serves. */
  readonly kind: K;
  /** One line for `lantern methods` and error messages. */
  readonly description: string;
  /** Zod schema of its parameters; unknown keys are rejected. */
  readonly params: z.ZodType<P>;
  /**
   * Methods only: the method makes its own input (e.g. `activation-max`), so a pipeline of such
   * methods may omit `inputs` and gets one zero input of the model's shape.
   */
  readonly synthesizesInput?: boolean;
  /**
   * Set by the loader on a plugin that runs in a sandboxed worker: its failures are reported and
   * the run goes on with the other methods.
   */
  readonly sandboxed?: boolean;
  /** Do the work. */
  run(input: I, params: P): Promise<O>;
}

/** A preprocess plugin: files → model-input batch. */
export type PreprocessPlugin<P = unknown> = Plugin<"preprocess", PreprocessInput, Batch, P>;
/** A model plugin: parameters → loaded model. */
export type ModelPlugin<P = unknown> = Plugin<"model", ModelInput, Model, P>;
/** A method plugin: model and batch → explanation. */
export type MethodPlugin<P = unknown> = Plugin<"method", MethodInput, Explanation, P>;
/** A render plugin: explanations → files. */
export type RenderPlugin<P = unknown> = Plugin<"render", RenderInput, OutputFile[], P>;
/** A plugin of any kind. */
export type AnyPlugin =
  // deno-lint-ignore no-explicit-any
  | PreprocessPlugin<any>
  // deno-lint-ignore no-explicit-any
  | ModelPlugin<any>
  // deno-lint-ignore no-explicit-any
  | MethodPlugin<any>
  // deno-lint-ignore no-explicit-any
  | RenderPlugin<any>;

type Def<T> = Omit<T, "kind">;

/** Define a preprocess plugin. */
export function definePreprocess<P>(def: Def<PreprocessPlugin<P>>): PreprocessPlugin<P> {
  return { ...def, kind: "preprocess" };
}

/** Define a model plugin. */
export function defineModel<P>(def: Def<ModelPlugin<P>>): ModelPlugin<P> {
  return { ...def, kind: "model" };
}

/**
 * Define a method plugin.
 *
 * ```ts
 * export const gradientTimesInput = defineMethod({
 *   name: "gradient-x-input",
 *   description: "Input times its gradient",
 *   params: z.object({ target: targetParam }).strict(),
 *   async run({ model, batch }, { target }) { ... },
 * });
 * ```
 */
export function defineMethod<P>(def: Def<MethodPlugin<P>>): MethodPlugin<P> {
  return { ...def, kind: "method" };
}

/** Define a render plugin. */
export function defineRender<P>(def: Def<RenderPlugin<P>>): RenderPlugin<P> {
  return { ...def, kind: "render" };
}

/** Whether `value` has the plugin shape (used to validate user modules). */
export function isPlugin(value: unknown): value is AnyPlugin {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === "string" && typeof v.run === "function" &&
    (PLUGIN_KINDS as readonly unknown[]).includes(v.kind) && typeof v.params === "object" &&
    v.params !== null && typeof (v.params as { safeParse?: unknown }).safeParse === "function";
}
