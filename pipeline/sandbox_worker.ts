/**
 * Worker side of a sandboxed plugin (see `sandbox.ts`): loads the plugin module and runs its
 * methods against a proxy model whose work is done by the main thread. The kit is imported here,
 * statically, so it is loaded before the worker's permissions matter; the plugin's own imports of
 * it then resolve to the loaded modules.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import "../mod.ts";
import { z } from "zod";
import type { GradientRequest, GradientResult } from "./gradients.ts";
import { type AnyPlugin, isPlugin, type MethodPlugin } from "./plugin.ts";
import {
  fromWire,
  type FromWorker,
  type SandboxedPluginInfo,
  toWire,
  toWireError,
  type ToWorker,
  type WireModel,
  type WireTensor,
} from "./sandbox.ts";
import type { Model, RunOptions, TensorInfo } from "./types.ts";
import type { Tensor } from "../kernels/tensor.ts";

function post(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

let plugins: AnyPlugin[] = [];
const models = new Map<number, Model>();
const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextCall = 1;

function call(run: number, op: "run" | "tensors" | "gradients", args: unknown): Promise<unknown> {
  const id = nextCall++;
  return new Promise((resolve, reject) => {
    calls.set(id, { resolve, reject });
    post({ type: "call", run, call: id, op, args });
  });
}

/** The main thread's model, seen from the worker; one per model, reused across runs. */
function proxyModel(info: WireModel, runOf: () => number): Model & {
  gradients(
    feeds: { input: Tensor; seed: Tensor },
    request: GradientRequest & { batchSize?: number },
  ): Promise<GradientResult>;
} {
  return {
    name: info.name,
    backend: info.backend,
    inputName: info.inputName,
    inputShape: info.inputShape,
    outputName: info.outputName,
    labels: info.labels,
    metadata: info.metadata,
    onnx: info.onnx,
    async tensors() {
      return await call(runOf(), "tensors", undefined) as TensorInfo[];
    },
    async run(input: Tensor, options?: RunOptions) {
      const out = await call(runOf(), "run", {
        input: await toWire(input),
        outputs: options?.outputs ? [...options.outputs] : undefined,
      }) as Record<string, WireTensor>;
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, fromWire(v)]));
    },
    async gradients(feeds, request) {
      const r = await call(runOf(), "gradients", {
        input: await toWire(feeds.input),
        seed: await toWire(feeds.seed),
        request,
      }) as { grads: WireTensor[]; output: WireTensor; kept: Record<string, WireTensor> };
      return {
        grads: r.grads.map(fromWire),
        output: fromWire(r.output),
        kept: Object.fromEntries(Object.entries(r.kept).map(([k, v]) => [k, fromWire(v)])),
      };
    },
    dispose: () => Promise.resolve(),
  };
}

function describe(p: AnyPlugin): SandboxedPluginInfo {
  let schema: Record<string, unknown> | null = null;
  try {
    schema = z.toJSONSchema(p.params as z.ZodType, {
      unrepresentable: "any",
      io: "input",
    }) as Record<string, unknown>;
  } catch { /* validated in the worker only */ }
  return {
    name: p.name,
    kind: p.kind,
    description: p.description,
    schema,
    ...(p.synthesizesInput ? { synthesizesInput: true } : {}),
  };
}

async function load(url: string): Promise<void> {
  try {
    const mod = await import(url) as Record<string, unknown>;
    plugins = Object.values(mod).filter(isPlugin);
    post({ type: "loaded", plugins: plugins.map(describe) });
  } catch (e) {
    post({ type: "load-failed", error: toWireError(e) });
  }
}

let current = 0;

async function runMethod(msg: Extract<ToWorker, { type: "run" }>): Promise<void> {
  try {
    const plugin = plugins.find((p) => p.kind === "method" && p.name === msg.plugin) as
      | MethodPlugin
      | undefined;
    if (!plugin) throw new Error(`the module exports no method "${msg.plugin}"`);
    let model: Model;
    if (typeof msg.model === "number") model = models.get(msg.model)!;
    else {
      model = proxyModel(msg.model, () => current);
      models.set(msg.model.id, model);
    }
    const parsed = (plugin.params as z.ZodType).safeParse(msg.params);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw Object.assign(new Error(issue.message), {
        name: "ParamError",
        key: String(issue.path[0] ?? ""),
      });
    }
    const params = parsed.data;
    current = msg.run;
    const result = await plugin.run({
      model,
      batch: {
        tensor: fromWire(msg.batch.tensor),
        names: msg.batch.names,
        images: msg.batch.images,
      },
      logits: fromWire(msg.logits),
      progress: (done, total, label) =>
        post({ type: "progress", run: msg.run, done, total, label }),
    }, params);
    const map = await toWire(result.map);
    const whole = map.data.byteOffset === 0 && map.data.byteLength === map.data.buffer.byteLength;
    post(
      { type: "result", run: msg.run, explanation: { ...result, map } },
      whole && map.data.buffer instanceof ArrayBuffer ? [map.data.buffer] : [],
    );
  } catch (e) {
    post({ type: "failed", run: msg.run, error: toWireError(e) });
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === "load") load(msg.url);
  else if (msg.type === "run") runMethod(msg);
  else if (msg.type === "reply") {
    const c = calls.get(msg.call);
    calls.delete(msg.call);
    if (!c) return;
    if (msg.error) {
      const err = new Error(msg.error.message);
      err.name = msg.error.name;
      if (msg.error.key) Object.assign(err, { key: msg.error.key });
      c.reject(err);
    } else c.resolve(msg.value);
  }
};
