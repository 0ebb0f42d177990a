/**
 * Sandboxed plugins: a third-party plugin module is loaded inside a Worker that Deno gives no file,
 * network, env, subprocess, FFI or system permission, and talks to the runtime by messages. The
 * main thread owns the model's onnxruntime sessions; the worker gets a proxy {@linkcode Model}
 * whose `run()`, `tensors()` and gradient requests are messages, so a sandboxed plugin is written
 * against the same kit (`mod.ts`) as an in-process one.
 *
 * The worker's read permission covers only the plugin's own source files; Lantern's kit is
 * imported statically by the worker entry, so it is loaded before the plugin without file access.
 * Deno checks permissions for imports computed at run time (`import(name)`, also from `eval`) but
 * preloads the specifiers a module spells out, so before a module is handed to a worker its source
 * (and that of the local modules it imports) is checked: no literal `import()`, no import
 * attributes (`with { type: "json" }`), no absolute, `file:` or remote specifiers, and relative
 * imports only inside the plugin's own directory (or of Lantern's sources).
 *
 * Worker permissions need `--unstable-worker-options` (Deno 2.x); the `lantern`, `demo` and `test`
 * tasks pass it.
 *
 * @module
 */
import { z } from "zod";
import { type Tensor, tensor, toCpu } from "../kernels/tensor.ts";
import { WebWorker } from "../kernels/backend.ts";
import { firstLine, LanternError, ParamError } from "./errors.ts";
import { type GradientRequest, type GradientResult, gradients } from "./gradients.ts";
import type { AnyPlugin, MethodInput, MethodPlugin, PluginKind } from "./plugin.ts";
import type { Batch, Explanation, Model, TensorInfo } from "./types.ts";

/** A tensor as it crosses the worker boundary (CPU data only). */
export interface WireTensor {
  readonly dims: readonly number[];
  readonly data: Float32Array;
  readonly layout: Tensor["layout"];
}

/** What the worker reports about each plugin a module exports. */
export interface SandboxedPluginInfo {
  /** Registered name. */
  readonly name: string;
  /** Plugin kind. */
  readonly kind: PluginKind;
  /** One-line description. */
  readonly description: string;
  /** The params schema as JSON Schema (`null` when zod cannot represent it). */
  readonly schema: Record<string, unknown> | null;
  /** Whether the method makes its own input. */
  readonly synthesizesInput?: boolean;
}

/** The model's static facts, sent once per model to the worker. */
export interface WireModel {
  readonly id: number;
  readonly name: string;
  readonly backend: Model["backend"];
  readonly inputName: string;
  readonly inputShape: readonly number[];
  readonly outputName: string;
  readonly labels?: readonly string[];
  readonly metadata?: Readonly<Record<string, string>>;
  readonly onnx: Uint8Array;
}

/** An error as it crosses the boundary. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  /** `ParamError`'s parameter. */
  readonly key?: string;
}

/** Messages from the main thread to the worker. */
export type ToWorker =
  | { type: "load"; url: string }
  | {
    type: "run";
    run: number;
    plugin: string;
    params: unknown;
    model: WireModel | number;
    batch: { tensor: WireTensor; names: readonly string[]; images?: Batch["images"] };
    logits: WireTensor;
  }
  | { type: "reply"; call: number; value?: unknown; error?: WireError };

/** Messages from the worker to the main thread. */
export type FromWorker =
  | { type: "loaded"; plugins: SandboxedPluginInfo[] }
  | { type: "load-failed"; error: WireError }
  | {
    type: "call";
    run: number;
    call: number;
    op: "run" | "tensors" | "gradients";
    args: unknown;
  }
  | { type: "progress"; run: number; done: number; total: number; label?: string }
  | { type: "result"; run: number; explanation: Omit<Explanation, "map"> & { map: WireTensor } }
  | { type: "failed"; run: number; error: WireError };

/** A tensor ready to post (GPU data is downloaded first). */
export async function toWire(t: Tensor): Promise<WireTensor> {
  const cpu = await toCpu(t);
  const d = cpu.data;
  // Structured clone copies a view's whole buffer, so a view into a larger one is cut out first.
  const data = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? d : d.slice();
  return { dims: [...cpu.dims], data, layout: cpu.layout };
}

/** A tensor received from the other side. */
export function fromWire(t: WireTensor): Tensor {
  return tensor(t.data, t.dims, t.layout);
}

/** Named tensors ready to post (see {@linkcode toWire}). */
export async function toWireRecord(
  tensors: Readonly<Record<string, Tensor>>,
): Promise<Record<string, WireTensor>> {
  const wire: Record<string, WireTensor> = {};
  for (const [k, v] of Object.entries(tensors)) wire[k] = await toWire(v);
  return wire;
}

/** Named tensors received from the other side. */
export function fromWireRecord(wire: Readonly<Record<string, WireTensor>>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(wire).map(([k, v]) => [k, fromWire(v)]));
}

/** An error as a plain object that survives structured clone. */
export function toWireError(e: unknown): WireError {
  const err = e as { name?: string; message?: string; key?: string };
  return {
    name: String(err?.name ?? "Error"),
    message: String(err?.message ?? e),
    ...(typeof err?.key === "string" ? { key: err.key } : {}),
  };
}

/** The error {@linkcode toWireError} describes: a {@linkcode ParamError} when `key` is set. */
export function fromWireError(w: WireError): Error {
  const err = w.key ? new ParamError(w.key, w.message) : new Error(w.message);
  err.name = w.name;
  return err;
}

/** Whether an error is a permission denial (an import denied read access is a TypeError). */
function isDenial(error: WireError): boolean {
  return error.name === "NotCapable" || error.name === "PermissionDenied" ||
    /^Requires \w+ access\b/.test(error.message);
}

/**
 * The one-line error for a failure inside a sandboxed plugin; a permission denial names what was
 * denied and how to allow it.
 */
function sandboxError(plugin: string, error: WireError): Error {
  const first = firstLine(error);
  if (isDenial(error)) {
    const m = first.match(/Requires (\w+) access(?: to "?([^",]*)"?)?/);
    const what = m ? `${m[1]} access${m[2] ? ` to "${m[2]}"` : ""}` : "access";
    return new LanternError(
      `Plugin "${plugin}" (sandboxed) was denied ${what}: sandboxed plugins get no file, network, env or subprocess access; mark it trusted: true to run it in-process`,
    );
  }
  if (error.name === "ParamError" && error.key) return new ParamError(error.key, first);
  return new LanternError(`Plugin "${plugin}" (sandboxed) failed: ${first}`);
}

const SPECIFIER =
  /(?:^|[;\s}])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']/g;
const CODE_FILE = /\.(?:ts|tsx|mts|js|jsx|mjs)$/;

/** The result of {@linkcode checkSandboxSource}. */
export interface SourceCheck {
  /** The first problem, as a one-line message; absent when the module may be loaded. */
  readonly problem?: string;
  /** The plugin's own source files (what the worker may read to load them). */
  readonly files: readonly string[];
}

/**
 * Check a sandboxed module's source before it is loaded (see the module doc). Local relative
 * imports are checked too unless they lie under `trustedRoot` (Lantern's own sources).
 */
export async function checkSandboxSource(
  url: URL,
  options: { trustedRoot: URL; read: (url: URL) => Promise<string>; allowRelative: boolean },
): Promise<SourceCheck> {
  const home = new URL("./", url).href;
  const seen = new Set<string>();
  const files: string[] = [];
  const problem = (text: string) => ({ problem: text, files });
  const queue = [url];
  while (queue.length) {
    const at = queue.shift()!;
    if (seen.has(at.href)) continue;
    seen.add(at.href);
    files.push(decodeURIComponent(at.pathname));
    const text = stripComments(await options.read(at));
    const where = at.href === url.href ? "it" : `its import "${at.pathname}"`;
    if (/\bimport\s*\(\s*(?:["']|`[^`$]*`)/.test(text)) {
      return problem(`${where} uses a literal import()`);
    }
    if (/["']\s*(?:with|assert)\s*\{\s*type\s*:/.test(text)) {
      return problem(`${where} imports a file with import attributes (e.g. JSON)`);
    }
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = m[1];
      if (/^(?:\.\.?\/)/.test(spec)) {
        if (!options.allowRelative) return problem(`${where} imports "${spec}" by a relative path`);
        const target = new URL(spec, at);
        if (!CODE_FILE.test(target.pathname)) {
          return problem(`${where} imports a non-code file "${spec}"`);
        }
        if (target.href.startsWith(options.trustedRoot.href)) continue;
        if (!target.href.startsWith(home)) {
          return problem(`${where} imports "${spec}", outside the plugin's directory`);
        }
        queue.push(target);
      } else if (/^[a-z][a-z0-9+.-]*:/i.test(spec) && !/^(?:npm|node):/.test(spec)) {
        return problem(
          `${where} imports "${spec}" (only relative, npm:, node: and import-map specifiers)`,
        );
      } else if (spec.startsWith("/")) {
        return problem(`${where} imports the absolute path "${spec}"`);
      }
    }
  }
  return { files };
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

/** Options for {@linkcode SandboxHost.open}. */
export interface SandboxOpenOptions {
  /** Label for messages: the path or URL as written in the pipeline. */
  readonly label: string;
  /** The plugin's own source files, which the worker may read (nothing else). */
  readonly files: readonly string[];
  /** Give up when the module has not loaded after this many ms (default 60 000). */
  readonly loadTimeoutMs?: number;
  /**
   * Stop the worker when one method run takes longer than this many ms (default 600 000): a
   * plugin from someone else must not hang the pipeline.
   */
  readonly runTimeoutMs?: number;
}

/** One sandboxed plugin module: a Worker and the plugins it exports. */
export class SandboxHost {
  readonly #worker: Worker;
  readonly #label: string;
  #plugins: SandboxedPluginInfo[] = [];
  #loaded?: { resolve: () => void; reject: (e: Error) => void };
  readonly #runs = new Map<number, {
    input: MethodInput;
    plugin: string;
    resolve: (e: Explanation) => void;
    reject: (e: Error) => void;
  }>();
  #nextRun = 1;
  readonly #models = new WeakMap<Model, number>();
  #nextModel = 1;
  #dead?: WireError;
  readonly #runTimeoutMs: number;

  private constructor(worker: Worker, label: string, runTimeoutMs: number) {
    this.#worker = worker;
    this.#label = label;
    this.#runTimeoutMs = runTimeoutMs;
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.#receive(e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail({ name: "Error", message: e.message });
    };
  }

  /** Start a worker with no permissions and load the module at `url` in it. */
  static async open(url: URL, options: SandboxOpenOptions): Promise<SandboxHost> {
    if (!WebWorker) {
      throw new LanternError(
        `Cannot sandbox plugin "${options.label}": this runtime has no Worker; mark it trusted: true to run it in-process`,
      );
    }
    const none = {
      read: options.files.length ? [...options.files] : false,
      write: false,
      net: false,
      env: false,
      run: false,
      ffi: false,
      sys: false,
      import: false,
    };
    let worker: Worker;
    try {
      worker = new WebWorker(new URL("./sandbox_worker.ts", import.meta.url), {
        type: "module",
        deno: { permissions: none },
      } as WorkerOptions);
    } catch (e) {
      const msg = firstLine(e);
      const hint = /unstable/i.test(msg) ? "; run deno with --unstable-worker-options" : "";
      throw new LanternError(`Cannot sandbox plugin "${options.label}": ${msg}${hint}`);
    }
    const host = new SandboxHost(worker, options.label, options.runTimeoutMs ?? 600_000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve, reject) => {
      host.#loaded = { resolve, reject };
      // A module whose top level never returns would otherwise hang the run.
      const ms = options.loadTimeoutMs ?? 60_000;
      timer = setTimeout(
        () =>
          reject(
            new LanternError(
              `Cannot load plugin module "${options.label}" (sandboxed): it did not finish loading in ${
                ms / 1000
              } s`,
            ),
          ),
        ms,
      );
      worker.postMessage({ type: "load", url: url.href } satisfies ToWorker);
    }).catch((e) => {
      worker.terminate();
      throw e;
    }).finally(() => clearTimeout(timer));
    return host;
  }

  /**
   * The module's plugins as plugin objects: methods run in the worker; other kinds cannot be
   * sandboxed and fail with a message saying so.
   */
  toPlugins(): AnyPlugin[] {
    return this.#plugins.map((info) => {
      const params = info.schema
        ? z.fromJSONSchema(info.schema as Parameters<typeof z.fromJSONSchema>[0])
        : z.record(z.string(), z.unknown());
      const base = {
        name: info.name,
        description: info.description,
        params,
        sandboxed: true,
        ...(info.synthesizesInput ? { synthesizesInput: true } : {}),
      };
      if (info.kind === "method") {
        return {
          ...base,
          kind: "method",
          run: (input: MethodInput, params: unknown) =>
            this.run(input, { plugin: info.name, params }),
        } satisfies MethodPlugin;
      }
      return {
        ...base,
        kind: info.kind,
        run: () =>
          Promise.reject(
            new LanternError(
              `Cannot run ${info.kind} plugin "${info.name}" sandboxed: only methods run in a worker; mark "${this.#label}" trusted: true`,
            ),
          ),
      } as AnyPlugin;
    });
  }

  /** Run method `options.plugin` of this module on `input` in the worker. */
  async run(
    input: MethodInput,
    options: { plugin: string; params: unknown },
  ): Promise<Explanation> {
    const { plugin, params } = options;
    if (this.#dead) throw sandboxError(plugin, this.#dead);
    const run = this.#nextRun++;
    let modelRef: WireModel | number;
    const known = this.#models.get(input.model);
    if (known) modelRef = known;
    else {
      const id = this.#nextModel++;
      this.#models.set(input.model, id);
      const m = input.model;
      modelRef = {
        id,
        name: m.name,
        backend: m.backend,
        inputName: m.inputName,
        inputShape: [...m.inputShape],
        outputName: m.outputName,
        labels: m.labels ? [...m.labels] : undefined,
        metadata: m.metadata ? { ...m.metadata } : undefined,
        onnx: m.onnx,
      };
    }
    const message: ToWorker = {
      type: "run",
      run,
      plugin,
      params,
      model: modelRef,
      batch: {
        tensor: await toWire(input.batch.tensor),
        names: [...input.batch.names],
        images: input.batch.images,
      },
      logits: await toWire(input.logits),
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    return await new Promise<Explanation>((resolve, reject) => {
      this.#runs.set(run, { input, plugin, resolve, reject });
      const ms = this.#runTimeoutMs;
      timer = setTimeout(() => {
        // The worker may be stuck in a loop that never yields: only terminating it stops it.
        this.#runs.delete(run);
        reject(
          new LanternError(
            `Plugin "${plugin}" (sandboxed) did not finish in ${
              ms / 1000
            } s and was stopped: raise timeout_s in its plugins entry, or make it faster`,
          ),
        );
        this.#worker.terminate();
        this.#fail({ name: "Error", message: `the worker was stopped after ${ms / 1000} s` });
      }, ms);
      this.#worker.postMessage(message);
    }).finally(() => clearTimeout(timer));
  }

  /** Stop the worker. */
  close(): void {
    this.#worker.terminate();
    this.#fail({ name: "Error", message: "the sandbox was closed" });
  }

  #fail(error: WireError): void {
    this.#dead ??= error;
    this.#loaded?.reject(this.#loadError(error));
    this.#loaded = undefined;
    for (const [id, r] of this.#runs) {
      this.#runs.delete(id);
      r.reject(sandboxError(r.plugin, error));
    }
  }

  #loadError(error: WireError): Error {
    if (isDenial(error)) return sandboxError(this.#label, error);
    return new LanternError(
      `Cannot load plugin module "${this.#label}" (sandboxed): ${firstLine(error)}`,
    );
  }

  #receive(msg: FromWorker): void {
    switch (msg.type) {
      case "loaded":
        this.#plugins = msg.plugins;
        this.#loaded?.resolve();
        this.#loaded = undefined;
        return;
      case "load-failed":
        this.#loaded?.reject(this.#loadError(msg.error));
        this.#loaded = undefined;
        return;
      case "progress":
        this.#runs.get(msg.run)?.input.progress?.(msg.done, msg.total, msg.label);
        return;
      case "result": {
        const r = this.#runs.get(msg.run);
        this.#runs.delete(msg.run);
        r?.resolve({ ...msg.explanation, map: fromWire(msg.explanation.map) });
        return;
      }
      case "failed": {
        const r = this.#runs.get(msg.run);
        this.#runs.delete(msg.run);
        r?.reject(sandboxError(r.plugin, msg.error));
        return;
      }
      case "call":
        this.#answer(msg).catch(() => {});
        return;
    }
  }

  async #answer(msg: Extract<FromWorker, { type: "call" }>): Promise<void> {
    const r = this.#runs.get(msg.run);
    const reply = (body: { value?: unknown; error?: WireError }) =>
      this.#worker.postMessage({ type: "reply", call: msg.call, ...body } satisfies ToWorker);
    if (!r) return reply({ error: { name: "Error", message: "the run has ended" } });
    try {
      reply({ value: await serve(r.input.model, msg.op, msg.args) });
    } catch (e) {
      reply({ error: toWireError(e) });
    }
  }
}

/** Answer one request of a sandboxed plugin with the real model. */
async function serve(model: Model, op: string, args: unknown): Promise<unknown> {
  if (op === "tensors") return [...await model.tensors()] as TensorInfo[];
  if (op === "run") {
    const a = args as { input: WireTensor; outputs?: string[] };
    return await toWireRecord(await model.run(fromWire(a.input), { outputs: a.outputs }));
  }
  if (op === "gradients") {
    const a = args as {
      input: WireTensor;
      seed: WireTensor;
      request: GradientRequest & { batchSize?: number };
    };
    const r: GradientResult = await gradients(model, {
      input: fromWire(a.input),
      seed: fromWire(a.seed),
    }, a.request);
    const kept = await toWireRecord(r.kept);
    return {
      grads: await Promise.all(r.grads.map(toWire)),
      output: await toWire(r.output),
      kept,
    };
  }
  throw new Error(`unknown request "${op}"`);
}
