/**
 * Backend choice. `auto` takes, in order: a hardware WebGPU adapter; the native onnxruntime
 * (onnxruntime-node: MLAS kernels on every core) where the host allows native add-ons; SIMD +
 * multi-threaded WASM otherwise.
 *
 * Software adapters (llvmpipe, SwiftShader, WARP — anything the browser marks as a fallback
 * adapter) are never chosen by `auto`: they are far slower than WASM. Forcing `webgpu` still uses
 * them, which is how CI exercises the WebGPU path on machines without a GPU.
 *
 * Native beats WASM on the same CPU wherever it loads (MobileNetV2 batch 1 on one thread: forward
 * 5×, forward+backward 3.2× faster; `tools/native_vs_torch.ts --wasm`), so `auto` takes it
 * whenever it is loadable: Deno with `--allow-ffi`, or Node. It is never loaded on edge runtimes
 * or without the ffi permission, which is queried first, so Deno never prompts for it.
 *
 * onnxruntime is imported lazily, and only the build the backend needs, to keep cold start low.
 *
 * @module
 */
import type { InferenceSession } from "onnxruntime-web";
import { firstLine } from "../pipeline/errors.ts";
import type { BackendInfo } from "../pipeline/types.ts";
import { readEnv, reservePages, withReservedMemory } from "./wasm_memory.ts";

/** What the user asks for. */
export type BackendRequest = "auto" | "wasm" | "webgpu" | "native";

/** Every accepted {@linkcode BackendRequest}, for schemas and help texts. */
export const BACKEND_REQUESTS: readonly BackendRequest[] = ["auto", "wasm", "webgpu", "native"];

/**
 * The onnxruntime API. Typed as onnxruntime-web's module; onnxruntime-node's module has the same
 * `InferenceSession`, `Tensor` and `env` (both re-export onnxruntime-common) and satisfies it.
 */
export type Ort = typeof import("onnxruntime-web");

/** What we learned about the WebGPU adapter, if any. */
export interface AdapterReport {
  /** Whether `navigator.gpu` exists at all. */
  readonly api: boolean;
  /** Adapter description (e.g. `"llvmpipe (LLVM 15.0.6, 256 bits)"`), if one was returned. */
  readonly description?: string;
  /** Whether the adapter is a software rasterizer. */
  readonly software?: boolean;
}

/** Whether the native onnxruntime can be used here, and why not. */
export interface NativeReport {
  /** Whether onnxruntime-node loaded. */
  readonly available: boolean;
  /** Why it is or is not available, in one clause. */
  readonly reason: string;
  /** What to do to make it available, when something can be done. */
  readonly hint?: string;
  /** onnxruntime-node's version, when loaded. */
  readonly version?: string;
}

const SOFTWARE_ADAPTERS = /llvmpipe|lavapipe|softpipe|swiftshader|warp|basic render|software/i;

let adapterPromise: Promise<AdapterReport> | undefined;

/** Probe the WebGPU adapter once per process. */
export function probeWebGpu(): Promise<AdapterReport> {
  adapterPromise ??= (async () => {
    const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    if (!gpu) return { api: false };
    try {
      const adapter = await gpu.requestAdapter();
      if (!adapter) return { api: true };
      const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
      const description = info.description || [info.vendor, info.architecture, info.device]
        .filter(Boolean).join(" ");
      const software = Boolean(info.isFallbackAdapter) || SOFTWARE_ADAPTERS.test(description);
      return { api: true, description, software };
    } catch {
      return { api: true };
    }
  })();
  return adapterPromise;
}

/**
 * Threads for WASM and native: the host's logical cores, or `LANTERN_THREADS` when set (a shared
 * host, or a benchmark that pins both sides to the same count).
 */
export function hardwareThreads(): number {
  const cap = Math.floor(Number(readEnv("LANTERN_THREADS")));
  if (cap >= 1) return cap;
  return Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
}

interface DenoLike {
  permissions?: { querySync?(d: { name: "ffi" }): { state: string } };
}

let nativePromise: Promise<{ report: NativeReport; ort?: Ort }> | undefined;
/** onnxruntime-node, loaded once (or the reason it cannot be). */
const native = () => nativePromise ??= loadNative();

// Not a literal in `import()`: a literal would put onnxruntime-node (288 MB of binaries for every
// platform) in the static module graph, so `deno cache`, `deno compile` and edge deploys of any
// program using Lantern would fetch it. Resolved through the import map at run time instead.
// Its API matches `Ort`: `tests/backend_test.ts` runs it against onnxruntime-web.
const NATIVE_MODULE: string = ["onnxruntime", "node"].join("-");

/**
 * Whether this runtime may load a native add-on: Deno only with the ffi permission already
 * granted (querying never prompts), Node and Bun always, browsers and edge runtimes never.
 */
function nativeAllowed(): NativeReport | undefined {
  const deno = (globalThis as { Deno?: DenoLike }).Deno;
  if (deno) {
    let state = "unknown";
    try {
      state = deno.permissions?.querySync?.({ name: "ffi" }).state ?? "unknown";
    } catch { /* an edge runtime's Deno without permissions */ }
    if (state === "granted") return undefined;
    return {
      available: false,
      reason: "Deno runs without the ffi permission (native add-ons need --allow-ffi)",
      hint: "run with --allow-ffi (deno run --allow-ffi …) to use the faster native backend",
    };
  }
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (proc?.versions?.node) return undefined;
  return {
    available: false,
    reason: "this runtime cannot load native add-ons (browser or edge runtime)",
  };
}

async function loadNative(): Promise<{ report: NativeReport; ort?: Ort }> {
  const refused = nativeAllowed();
  if (refused) return { report: refused };
  try {
    const ort = await import(NATIVE_MODULE) as Ort;
    ort.env.logLevel = "error";
    const version = (ort.env.versions as { node?: string } | undefined)?.node;
    return {
      ort,
      report: { available: true, reason: `onnxruntime-node ${version ?? ""} loaded`, version },
    };
  } catch (e) {
    return {
      report: {
        available: false,
        reason: `onnxruntime-node failed to load: ${firstLine(e)}`,
        hint: "check that npm:onnxruntime-node can be fetched and has binaries for this platform",
      },
    };
  }
}

/** Try once per process to load the native onnxruntime; say whether it can be used and why. */
export async function probeNative(): Promise<NativeReport> {
  return (await native()).report;
}

/** Decide which backend serves `request`, and say why. */
export async function chooseBackend(request: BackendRequest): Promise<BackendInfo> {
  const threads = hardwareThreads();
  const wasm = (reason: string): BackendInfo => ({ name: "wasm", reason, threads });
  if (request === "wasm") return wasm("wasm was requested");
  if (request === "native") {
    const native = await probeNative();
    if (!native.available) {
      throw new Error(
        `Cannot use backend "native": ${native.reason} — ${
          native.hint ? `${native.hint}, or ` : ""
        }use --backend wasm`,
      );
    }
    return { name: "native", reason: "native was requested", threads };
  }
  const adapter = await probeWebGpu();
  if (request === "webgpu") {
    if (!adapter.description) {
      throw new Error(
        `Cannot use backend "webgpu": ${
          adapter.api ? "no WebGPU adapter was found" : "this runtime has no WebGPU API"
        } — use --backend wasm`,
      );
    }
    return {
      name: "webgpu",
      reason: `webgpu was requested${adapter.software ? " (software adapter: slow)" : ""}`,
      adapter: adapter.description,
      threads: 1,
    };
  }
  if (adapter.description && !adapter.software) {
    return {
      name: "webgpu",
      reason: "a hardware WebGPU adapter is present",
      adapter: adapter.description,
      threads: 1,
    };
  }
  const noGpu = adapter.description
    ? `the only WebGPU adapter is a software one (${adapter.description})`
    : adapter.api
    ? "no WebGPU adapter was found"
    : "this runtime has no WebGPU API";
  const native = await probeNative();
  if (native.available) {
    return {
      name: "native",
      reason: `${noGpu}; native onnxruntime is loadable and faster than WASM`,
      threads,
    };
  }
  return wasm(`${noGpu}; native is unavailable: ${native.reason}`);
}

/**
 * The host's Web `Worker`, captured before onnxruntime-web loads: its Emscripten runtime replaces
 * the global with Node's worker_threads `Worker` (no `self`, no Deno permissions) when it starts
 * its threads. Undefined where the runtime has no workers.
 */
export const WebWorker: typeof Worker | undefined = globalThis.Worker;

const ortModules = new Map<string, Promise<Ort>>();

// A one-node Identity model: creating a session on it initializes onnxruntime-web's WASM heap.
const WARMUP_MODEL = Uint8Array.from(
  atob(
    "CAc6PAoQCgF4EgF5IghJZGVudGl0eRIGd2FybXVwWg8KAXgSCgoICAESBAoCCAFiDwoBeRIKCggIARIECgIIAUIECgAQDQ==",
  ),
  (c) => c.charCodeAt(0),
);

/**
 * Load the onnxruntime build for `backend`, configured for it.
 *
 * The WebGPU build runs its WASM part on one thread: with more, onnxruntime-web preloads its
 * worker module through a `blob:` URL, which Deno's module loader refuses. The GPU does the work.
 * The threaded WASM build gets its heap reserved before the threads start (see
 * `wasm_memory.ts`: growing a shared heap mid-run can hang). Native threads are set per session
 * ({@linkcode sessionOptions}).
 */
export function loadOrt(backend: BackendInfo): Promise<Ort> {
  const key = backend.name;
  let mod = ortModules.get(key);
  if (!mod) {
    mod = (async () => {
      if (key === "native") {
        const { ort, report } = await native();
        if (!ort) throw new Error(`Cannot use backend "native": ${report.reason}`);
        return ort;
      }
      const ort: Ort = key === "webgpu"
        ? await import("onnxruntime-web/webgpu")
        : await import("onnxruntime-web");
      ort.env.wasm.numThreads = backend.threads ?? 1;
      ort.env.logLevel = "error";
      if ((backend.threads ?? 1) > 1) {
        await withReservedMemory(reservePages(), async () => {
          const s = await ort.InferenceSession.create(WARMUP_MODEL);
          await s.release();
        });
      }
      return ort;
    })();
    ortModules.set(key, mod);
    mod.catch(() => ortModules.delete(key));
  }
  return mod;
}

/** The execution providers list for a backend. */
export function executionProviders(backend: BackendInfo): string[] {
  return backend.name === "webgpu" ? ["webgpu"] : backend.name === "native" ? ["cpu"] : ["wasm"];
}

/** Session options for a backend: its execution provider, full graph optimization, threads. */
export function sessionOptions(backend: BackendInfo): InferenceSession.SessionOptions {
  const options: InferenceSession.SessionOptions = {
    executionProviders: executionProviders(backend),
    graphOptimizationLevel: "all",
  };
  // Idle pool threads sleep instead of spinning. Every session has its own pool, and a method
  // alternates sessions (the forward pass, then the gradient graph): one session's spinning
  // threads then take the cores from the next. Native MobileNetV2 Grad-CAM after its forward pass:
  // 20.9 ms spinning, 8.0 ms not. On WASM, runs with idle gaps between them (a server, the
  // bench's turns) fell into 30–38 ms stretches instead of 20–24 ms (median of 50 forward passes,
  // 4 processes each). Back-to-back runs of one native session lose up to ~1 ms (4–5 ms forward).
  options.extra = { session: { intra_op: { allow_spinning: "0" } } };
  // onnxruntime-web takes its thread count from env.wasm.numThreads; native takes it per session.
  if (backend.name === "native") {
    options.intraOpNumThreads = backend.threads ?? hardwareThreads();
    options.interOpNumThreads = 1;
  }
  return options;
}
