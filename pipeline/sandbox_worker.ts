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
import { ParamError } from "./errors.ts";
import type { GradientHookModel } from "./gradients.ts";
import { type AnyPlugin, isPlugin, type MethodPlugin } from "./plugin.ts";
import { validateParams } from "./runner.ts";
import {
  fromWire,
  fromWireError,
  fromWireRecord,
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
/** The run whose model calls the proxy models make now. */
let current = 0;

function call(run: number, op: "run" | "tensors" | "gradients", args: unknown): Promise<unknown> {
  const id = nextCall++;
  return new Promise((resolve, reject) => {
    calls.set(id, { resolve, reject });
    post({ type: "call", run, call: id, op, args });
  });
}

/** The main thread's model, seen from the worker; one per model, reused across runs. */
function proxyModel(info: WireModel): GradientHookModel {
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
      return await call(current, "tensors", undefined) as TensorInfo[];
    },
    async run(input: Tensor, options?: RunOptions) {
      const out = await call(current, "run", {
        input: await toWire(input),
        outputs: options?.outputs ? [...options.outputs] : undefined,
      }) as Record<string, WireTensor>;
      return fromWireRecord(out);
    },
    async gradients(feeds, request) {
      const r = await call(current, "gradients", {
        input: await toWire(feeds.input),
        seed: await toWire(feeds.seed),
        request,
      }) as { grads: WireTensor[]; output: WireTensor; kept: Record<string, WireTensor> };
      return {
        grads: r.grads.map(fromWire),
        output: fromWire(r.output),
        kept: fromWireRecord(r.kept),
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

async function runMethod(msg: Extract<ToWorker, { type: "run" }>): Promise<void> {
  try {
    const plugin = plugins.find((p) => p.kind === "method" && p.name === msg.plugin) as
      | MethodPlugin
      | undefined;
    if (!plugin) throw new Error(`the module exports no method "${msg.plugin}"`);
    let model: Model;
    if (typeof msg.model === "number") model = models.get(msg.model)!;
    else {
      model = proxyModel(msg.model);
      models.set(msg.model.id, model);
    }
    const params = validateParams(
      plugin,
      msg.params as Record<string, unknown>,
      (path, message) => {
        throw new ParamError(String(path[0] ?? ""), message);
      },
    );
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
    post(
      { type: "result", run: msg.run, explanation: { ...result, map } },
      map.data.buffer instanceof ArrayBuffer ? [map.data.buffer] : [],
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
    if (msg.error) c.reject(fromWireError(msg.error));
    else c.resolve(msg.value);
  }
};
