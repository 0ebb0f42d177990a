/**
 * Reserve onnxruntime-web's shared WASM memory up front, so it never grows while worker threads
 * run.
 *
 * Why: with `numThreads > 1`, onnxruntime-web's heap is a shared `WebAssembly.Memory` that starts
 * at 16 MiB and grows on demand — a lot on the first run of a graph whose tensors are not all
 * covered by its memory plan (backward graphs, graphs exposing intermediate tensors). Deno runs
 * wasm without V8's trap handler, so V8 emits explicit bounds checks, and optimized code in a
 * worker that is spinning in onnxruntime's thread pool keeps the memory size it started with.
 * When the main thread grows the heap, the worker's next access past the old end traps ("memory
 * access out of bounds"); the dead worker is never reported and the main thread spins forever
 * waiting for it. `tools/wasm_grow_repro/` shows the V8 behaviour in 25 lines of wasm without
 * onnxruntime; `tools/hang_repro.ts raw` shows the hang (MobileNetV2 exposing every tensor: 4 of
 * 4 runs hung with 2 threads, none with 1; SqueezeNet's backward graph: 6 of 8). With the heap
 * reserved, 8 of 8 and 10 of 10 completed.
 *
 * The reservation holds while peak heap use stays under it: very large batches with threads
 * need a larger `LANTERN_WASM_RESERVE_MB`.
 *
 * Reserving costs address space, not RAM: untouched pages of a fresh mapping are not backed.
 *
 * @module
 */

/** Pages of 64 KiB in the default reservation (1 GiB). */
export const DEFAULT_RESERVE_PAGES = 16384;

/** onnxruntime-web's Emscripten heap: shared, with the 4 GiB maximum of wasm32. */
function isOrtHeap(d: WebAssembly.MemoryDescriptor): boolean {
  return Boolean(d.shared) && d.maximum === 65536;
}

/**
 * Run `init` (which must create onnxruntime-web's heap) with shared wasm32 heaps created at
 * `pages` pages instead of their small initial size; the global constructor is restored after.
 */
export async function withReservedMemory<T>(pages: number, init: () => Promise<T>): Promise<T> {
  const Native = WebAssembly.Memory;
  class ReservedMemory extends Native {
    constructor(d: WebAssembly.MemoryDescriptor) {
      super(isOrtHeap(d) ? { ...d, initial: Math.max(d.initial, pages) } : d);
    }
  }
  (WebAssembly as { Memory: typeof Native }).Memory = ReservedMemory;
  try {
    return await init();
  } finally {
    (WebAssembly as { Memory: typeof Native }).Memory = Native;
  }
}

/** Reservation size from `LANTERN_WASM_RESERVE_MB` where the runtime exposes env, else 1 GiB. */
export function reservePages(): number {
  const mb = readEnv("LANTERN_WASM_RESERVE_MB");
  const n = Number(mb);
  return mb && n > 0 ? Math.ceil((n * 2 ** 20) / 65536) : DEFAULT_RESERVE_PAGES;
}

interface DenoEnv {
  env: { get(k: string): string | undefined };
  permissions?: { querySync?(d: { name: "env"; variable: string }): { state: string } };
}

/**
 * An environment variable, where the runtime has an environment and reading it is already
 * allowed: the permission is queried first, so Deno never prompts for it. Undefined otherwise.
 */
export function readEnv(name: string): string | undefined {
  const deno = (globalThis as { Deno?: DenoEnv }).Deno;
  try {
    const state = deno?.permissions?.querySync?.({ name: "env", variable: name }).state;
    if (state !== undefined && state !== "granted") return undefined;
    return deno?.env.get(name);
  } catch {
    return undefined; // an edge runtime without env or permissions
  }
}
