/**
 * `lantern run PIPELINE --watch`: run, then re-run whenever the pipeline file or a local plugin
 * module changes. The model (its onnxruntime sessions and derived gradient graphs) stays loaded
 * across re-runs unless the `model:` section changes, and only the plugin module that changed is
 * imported again (a new `?v=N` URL in-process, or a new worker when sandboxed); modules that
 * plugin imports stay cached by Deno, so edit the plugin file itself or restart.
 *
 * @module
 */
import { firstLine } from "../pipeline/errors.ts";
import { PipelineSource } from "../pipeline/config.ts";
import { absolute, dirname, toFileUrl, writeOutputs } from "../pipeline/paths.ts";
import type { ProgressFn } from "../pipeline/plugin.ts";
import { PluginLoader } from "../pipeline/registry.ts";
import { runPipelineSource } from "../pipeline/runner.ts";
import type { Model } from "../pipeline/types.ts";

/** Options for {@linkcode watchPipeline}. */
export interface WatchOptions {
  /** `--set` overrides, applied on every run. */
  readonly set?: readonly string[];
  /** Output directory (overrides `out:`). */
  readonly out?: string;
  /** Progress of long methods. */
  readonly progress?: ProgressFn;
  /** Where status lines go (default `console.log`). */
  readonly log?: (line: string) => void;
  /** Stops watching. */
  readonly signal?: AbortSignal;
  /** Quiet time after a change before re-running, in ms (default 30). */
  readonly debounceMs?: number;
}

/** Run `file` and re-run it on every change until `options.signal` aborts. */
export async function watchPipeline(file: string, options: WatchOptions = {}): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(line));
  const baseDir = dirname(file);
  const plugins = new PluginLoader({ baseUrl: toFileUrl(`${baseDir}/`) });
  const pipelinePath = absolute(file);
  let model: Model | undefined;
  let modelKey = "";
  let runs = 0;

  const runOnce = async () => {
    const started = performance.now();
    runs++;
    try {
      const source = new PipelineSource(await Deno.readTextFile(file), file);
      for (const s of options.set ?? []) source.set(s);
      const key = JSON.stringify(source.validate().model);
      if (model && key !== modelKey) {
        await model.dispose();
        model = undefined;
      }
      const loading = !model;
      const result = await runPipelineSource(source, {
        baseDir,
        progress: options.progress,
        plugins,
        model,
        keepModel: true,
      });
      if (loading) {
        model = result.model;
        modelKey = key;
        log(`[watch] loaded model ${model.name}`);
      }
      for (const f of result.failures) log(`error: ${f.message}`);
      const written = await writeOutputs(options.out ?? result.out, result.files);
      const ms = Math.round(performance.now() - started);
      log(
        `[watch] run ${runs}: ${result.explanations.length} method(s), wrote ${written.length} file(s) in ${ms} ms`,
      );
    } catch (e) {
      log(`error: ${firstLine(e)}`);
    }
  };

  await runOnce();
  try {
    while (!options.signal?.aborted) {
      const changed = await nextChange([pipelinePath, ...plugins.files()], options);
      if (!changed) break;
      for (const path of changed) {
        if (plugins.invalidate(path)) log(`[watch] reloading plugin ${path}`);
      }
      await runOnce();
    }
  } finally {
    plugins.dispose();
    await model?.dispose();
  }
}

/**
 * Wait for a change to any of `files` (their directories are watched, so editors that replace a
 * file by renaming are seen), then for `debounceMs` of quiet; returns the changed files, or
 * `undefined` when aborted.
 */
async function nextChange(
  files: readonly string[],
  options: WatchOptions,
): Promise<Set<string> | undefined> {
  const wanted = new Set(files);
  const watcher = Deno.watchFs([...new Set(files.map(dirname))], { recursive: false });
  const onAbort = () => watcher.close();
  options.signal?.addEventListener("abort", onAbort);
  const changed = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const done = new Promise<void>((resolve) => {
      (async () => {
        for await (const event of watcher) {
          if (event.kind === "access") continue;
          const hits = event.paths.filter((p) => wanted.has(p));
          if (!hits.length) continue;
          hits.forEach((p) => changed.add(p));
          clearTimeout(timer);
          timer = setTimeout(resolve, options.debounceMs ?? 30);
        }
        resolve();
      })();
    });
    await done;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    try {
      watcher.close();
    } catch { /* already closed */ }
  }
  return options.signal?.aborted ? undefined : changed;
}
