/**
 * Run a pipeline: resolve and validate every stage first (so a typo fails before any work), load
 * the model, preprocess inputs, run each method, render, and only then write the files.
 *
 * @module
 */
import type { z } from "zod";
import type { Entry, KeyPath, PipelineConfig, PipelineSource } from "./config.ts";
import { describeIssue, formatPath } from "./config.ts";
import { didYouMean, firstLine, LanternError, ParamError } from "./errors.ts";
import { expandGlob } from "./glob.ts";
import { zeroBatch } from "./batching.ts";
import type {
  AnyPlugin,
  MethodPlugin,
  ModelPlugin,
  PluginKind,
  PreprocessPlugin,
  ProgressFn,
  RenderPlugin,
} from "./plugin.ts";
import { choosePlugin, getPlugin, PluginLoader } from "./registry.ts";
import { topPredictions } from "./targets.ts";
import type { Batch, Explanation, Model, OutputFile, Prediction } from "./types.ts";
import { isUrl, resolvePath } from "../plugins/model/source.ts";
import { toFileUrl } from "./paths.ts";

/** A stage entry bound to its plugin and validated parameters. */
export interface BoundStage {
  /** The plugin. */
  readonly plugin: AnyPlugin;
  /** Validated parameters. */
  readonly params: unknown;
  /** Label for output names (`id` or the plugin name). */
  readonly label: string;
  /** Where the entry sits in the file. */
  readonly path: KeyPath;
}

/** Everything a run produced. */
export interface PipelineResult {
  /** The loaded model (dispose it when done). */
  readonly model: Model;
  /** The preprocessed inputs. */
  readonly batch: Batch;
  /** Top-5 predictions per image. */
  readonly predictions: readonly (readonly Prediction[])[];
  /** One result per method entry. */
  readonly explanations: readonly Explanation[];
  /** Files the renders produced, not yet written. */
  readonly files: readonly OutputFile[];
  /** Output directory from the file or the override. */
  readonly out: string;
  /**
   * Methods that failed without stopping the run: sandboxed plugins, whose errors (e.g. a denied
   * permission) are reported while the other methods' results are kept.
   */
  readonly failures: readonly MethodFailure[];
}

/** A method that failed without stopping the run. */
export interface MethodFailure {
  /** The method's label (`id` or name). */
  readonly method: string;
  /** Where the entry sits in the file. */
  readonly path: KeyPath;
  /** One-line message, located in the pipeline file. */
  readonly message: string;
}

/** Options for {@linkcode runPipelineSource}. */
export interface RunPipelineOptions {
  /** Directory that relative paths in the file are resolved against. */
  baseDir?: string;
  /** Progress callback for long methods. */
  progress?: ProgressFn;
  /** Keep the model open (the caller disposes `result.model`). */
  keepModel?: boolean;
  /** Reuse an already loaded model instead of the `model` stage. */
  model?: Model;
  /**
   * Make the batch from the loaded model instead of reading `inputs` (which are then neither
   * resolved nor preprocessed): for methods that synthesize their input, e.g. `activation-max`.
   */
  makeBatch?: (model: Model) => Batch;
  /**
   * Load plugin modules with this loader and keep them loaded (the caller disposes it); by default
   * a loader lives for one run. `--watch` keeps one across re-runs.
   */
  plugins?: PluginLoader;
  /**
   * Inputs given directly — paths, or bytes with a name (the name gives output file stems) —
   * instead of the file's `inputs`, so a script or service needs no file system.
   */
  inputs?: readonly (string | { name: string; bytes: Uint8Array })[];
}

const RESERVED = new Set(["name", "plugin", "id"]);

function paramsOf(entry: Entry): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entry).filter(([k]) => !RESERVED.has(k)));
}

/**
 * Validate `raw` against a plugin's schema, pointing unknown keys at their closest valid names.
 * A failure throws the error `fail` makes (or whatever `fail` throws itself).
 */
export function validateParams(
  plugin: AnyPlugin,
  raw: Record<string, unknown>,
  fail: (path: KeyPath, message: string) => Error,
): unknown {
  const parsed = (plugin.params as z.ZodType).safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const shape = (plugin.params as { shape?: Record<string, unknown> }).shape;
  if (issue.code === "unrecognized_keys" && shape) {
    const bad = issue.keys[0];
    throw fail(
      [bad],
      `unknown parameter '${bad}' for ${plugin.kind} '${plugin.name}'${
        didYouMean(bad, Object.keys(shape))
      } (parameters: ${Object.keys(shape).join(", ")})`,
    );
  }
  throw fail(issue.path.map((k) => typeof k === "symbol" ? String(k) : k), describeIssue(issue));
}

/** Finds plugins for stage entries: declared `plugins:` modules first, then the registry. */
interface PluginResolver {
  find(kind: PluginKind, entry: Entry, fallbackName: string): Promise<AnyPlugin>;
}

async function pluginResolver(
  source: PipelineSource,
  config: PipelineConfig,
  loader: PluginLoader,
): Promise<PluginResolver> {
  const declared = config.plugins ?? [];
  const specs = declared.map((p) => ({
    specifier: (p.path ?? p.url)!,
    sha256: p.sha256,
    trusted: p.trusted ?? false,
    runTimeoutMs: p.timeout_s === undefined ? undefined : p.timeout_s * 1000,
  }));
  const modules = await Promise.all(specs.map(async (spec, i) => {
    try {
      return await loader.load(spec);
    } catch (e) {
      throw source.error(["plugins", i, declared[i].path ? "path" : "url"], (e as Error).message);
    }
  }));
  const byUrl = new Map(specs.map((s, i) => [loader.resolve(s.specifier).href, i]));
  return {
    async find(kind, entry, fallbackName) {
      if (entry.plugin) {
        const i = byUrl.get(loader.resolve(entry.plugin).href);
        if (i !== undefined) {
          return choosePlugin(modules[i], entry.plugin, { kind, name: entry.name });
        }
        if (isUrl(entry.plugin) && !entry.plugin.startsWith("file:")) {
          throw new LanternError(
            `Cannot load plugin "${entry.plugin}": declare it under plugins: with url: and sha256:`,
          );
        }
        // An undeclared local module is the author's own code: in-process, as before.
        const found = await loader.load({ specifier: entry.plugin, trusted: true });
        return choosePlugin(found, entry.plugin, { kind, name: entry.name });
      }
      const name = entry.name ?? fallbackName;
      const own = modules.flat().filter((p) => p.kind === kind && p.name === name);
      return own.at(-1) ?? getPlugin(kind, name);
    },
  };
}

async function bind(
  source: PipelineSource,
  kind: PluginKind,
  entry: Entry,
  path: KeyPath,
  resolver: PluginResolver,
  fallbackName: string,
): Promise<BoundStage> {
  let plugin: AnyPlugin;
  try {
    plugin = await resolver.find(kind, entry, fallbackName);
  } catch (e) {
    throw source.error([...path, entry.plugin ? "plugin" : "name"], (e as Error).message);
  }
  const fail = (p: KeyPath, message: string) => {
    throw source.error([...path, ...p], message);
  };
  const params = validateParams(plugin, paramsOf(entry), fail);
  return { plugin, params, label: entry.id ?? plugin.name, path };
}

/** Resolve a pipeline's inputs (globs relative to `baseDir`) to file paths. */
export async function resolveInputs(
  source: PipelineSource,
  config: PipelineConfig,
  baseDir: string,
): Promise<string[]> {
  if (config.inputs === undefined) throw source.error([], "missing inputs (files or globs)");
  const patterns = Array.isArray(config.inputs) ? config.inputs : [config.inputs];
  const files: string[] = [];
  for (const [i, pattern] of patterns.entries()) {
    const full = resolvePath(pattern, baseDir);
    const found = await expandGlob(full);
    if (found.length === 0) {
      throw source.error(
        ["inputs", ...(Array.isArray(config.inputs) ? [i] : [])],
        `no files match "${pattern}"`,
      );
    }
    files.push(...found);
  }
  return files;
}

/** Run a parsed pipeline file. Nothing is written: the caller writes `result.files`. */
export async function runPipelineSource(
  source: PipelineSource,
  options: RunPipelineOptions = {},
): Promise<PipelineResult> {
  const config = source.validate();
  const baseDir = options.baseDir ?? ".";
  const loader = options.plugins ?? new PluginLoader({ baseUrl: toFileUrl(`${baseDir}/`) });
  try {
    return await runValidated(source, config, loader, options);
  } finally {
    if (!options.plugins) loader.dispose();
  }
}

async function runValidated(
  source: PipelineSource,
  config: PipelineConfig,
  loader: PluginLoader,
  options: RunPipelineOptions,
): Promise<PipelineResult> {
  const baseDir = options.baseDir ?? ".";
  const resolver = await pluginResolver(source, config, loader);
  const modelStage = await bind(source, "model", config.model, ["model"], resolver, "onnx");
  const methods = await Promise.all(
    config.methods.map((m, i) => bind(source, "method", m, ["methods", i], resolver, "")),
  );
  const labels = methods.map((m) => m.label);
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup) {
    throw source.error(["methods"], `two methods are both labelled '${dup}' — give one an id:`);
  }
  const renders = await Promise.all(
    config.render.map((r, i) => bind(source, "render", r, ["render", i], resolver, "")),
  );
  // A pipeline of methods that make their own input (activation-max) may omit `inputs`.
  const makeBatch = options.makeBatch ??
    (config.inputs === undefined && methods.every((m) => m.plugin.synthesizesInput)
      ? (m: Model) => zeroBatch(m, methods[0].label)
      : undefined);
  const files = makeBatch
    ? []
    : options.inputs?.length
    ? [...options.inputs]
    : await resolveInputs(source, config, baseDir);

  const model = options.model ??
    await (modelStage.plugin as ModelPlugin).run({ baseDir }, modelStage.params as never) as Model;
  try {
    const preEntry = config.preprocess ??
      {
        name: files.every((f) => (typeof f === "string" ? f : f.name).endsWith(".npy"))
          ? "npy"
          : "image",
      };
    const pre = await bind(source, "preprocess", preEntry, ["preprocess"], resolver, "image");
    const batch = makeBatch?.(model) ?? await runStage(
      source,
      pre,
      () => (pre.plugin as PreprocessPlugin).run({ sources: files, model }, pre.params as never),
    ) as Batch;
    const logits = (await model.run(batch.tensor))[model.outputName];
    const predictions = topPredictions(logits, { topk: 5, labels: model.labels });
    const explanations: Explanation[] = [];
    const failures: MethodFailure[] = [];
    for (const m of methods) {
      const result = await runStage(
        source,
        m,
        () =>
          (m.plugin as MethodPlugin).run(
            {
              model,
              batch,
              logits,
              progress: options.progress,
              readFile: (path: string) => Deno.readFile(resolvePath(path, baseDir)),
            },
            m.params as never,
          ),
      ).catch((e: Error) => {
        if (!m.plugin.sandboxed) throw e;
        const located = e.message.includes(` ${formatPath(m.path)}`)
          ? e.message
          : source.error(m.path, e.message).message;
        failures.push({ method: m.label, path: m.path, message: located });
        return undefined;
      }) as Explanation | undefined;
      if (result) explanations.push({ ...result, method: m.label });
    }
    const outputs: OutputFile[] = [];
    for (const r of renders) {
      const produced = await runStage(
        source,
        r,
        () =>
          (r.plugin as RenderPlugin).run(
            { batch, explanations, predictions, model },
            r.params as never,
          ),
      ) as OutputFile[];
      outputs.push(...produced);
    }
    if (!options.keepModel && !options.model) await model.dispose();
    return {
      model,
      batch,
      predictions,
      explanations,
      files: outputs,
      out: config.out ?? "out",
      failures,
    };
  } catch (e) {
    if (!options.model) await model.dispose();
    throw e;
  }
}

async function runStage<T>(
  source: PipelineSource,
  stage: BoundStage,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ParamError) throw source.error([...stage.path, e.key], e.message);
    if (e instanceof LanternError) throw e;
    throw new LanternError(
      `${stage.plugin.kind} '${stage.label}' failed: ${firstLine(e)}`,
    );
  }
}
