/**
 * Backend choice: a hardware WebGPU adapter when one exists, SIMD + multi-threaded WASM otherwise.
 *
 * Software adapters (llvmpipe, SwiftShader, WARP — anything the browser marks as a fallback
 * adapter) are never chosen by `auto`: they are far slower than WASM. Forcing `webgpu` still uses
 * them, which is how CI exercises the WebGPU path on machines without a GPU.
 *
 * onnxruntime-web is imported lazily, and only the build the backend needs, to keep cold start low.
 *
 * @module
 */
import type { BackendInfo } from "../pipeline/types.ts";
import { reservePages, withReservedMemory } from "./wasm_memory.ts";

/** What the user asks for. */
export type BackendRequest = "auto" | "wasm" | "webgpu";

/** The onnxruntime-web module (both builds share this API). */
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

/** Logical cores the host offers to WASM threads. */
export function hardwareThreads(): number {
  return Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
}

/** Decide which backend serves `request`, and say why. */
export async function chooseBackend(request: BackendRequest): Promise<BackendInfo> {
  const threads = hardwareThreads();
  const wasm = (reason: string): BackendInfo => ({ name: "wasm", reason, threads });
  if (request === "wasm") return wasm("wasm was requested");
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
  if (adapter.description) {
    return wasm(
      `the only WebGPU adapter is a software one (${adapter.description}); WASM is faster`,
    );
  }
  return wasm(adapter.api ? "no WebGPU adapter was found" : "this runtime has no WebGPU API");
}

const ortModules = new Map<string, Promise<Ort>>();

// A one-node Identity model: creating a session on it initializes onnxruntime-web's WASM heap.
const WARMUP_MODEL = Uint8Array.from(
  atob(
    "CAc6PAoQCgF4EgF5IghJZGVudGl0eRIGd2FybXVwWg8KAXgSCgoICAESBAoCCAFiDwoBeRIKCggIARIECgIIAUIECgAQDQ==",
  ),
  (c) => c.charCodeAt(0),
);

/**
 * Load the onnxruntime-web build for `backend`, configured for it.
 *
 * The WebGPU build runs its WASM part on one thread: with more, onnxruntime-web preloads its
 * worker module through a `blob:` URL, which Deno's module loader refuses. The GPU does the work.
 * The threaded WASM build gets its heap reserved before the threads start (see
 * `wasm_memory.ts`: growing a shared heap mid-run can hang).
 */
export function loadOrt(backend: BackendInfo): Promise<Ort> {
  const key = backend.name;
  let mod = ortModules.get(key);
  if (!mod) {
    mod = (async () => {
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
  }
  return mod;
}

/** The execution providers list for a backend. */
export function executionProviders(backend: BackendInfo): string[] {
  return backend.name === "webgpu" ? ["webgpu"] : ["wasm"];
}
