/**
 * Reserve onnxruntime-web's shared WASM memory up front, so it never grows while worker threads
 * run.
 *
 * Why: with `numThreads > 1`, onnxruntime-web's heap is a shared `WebAssembly.Memory` that starts
 * at 16 MiB and grows on demand. When it grows on the main thread in the middle of a session run
 * — which happens on the first run of any graph whose tensors are not all covered by the memory
 * plan, such as a graph that exposes intermediate tensors or a backward graph — a worker thread
 * can go on with a stale view of the memory and the run never finishes (V8 updates other
 * isolates' view of a grown shared memory lazily; dotnet/runtime#94299 describes the same
 * failure). Reproduced here: MobileNetV2 with every tensor as an output hung in 4 of 4 runs with 2
 * threads and never with 1; with the memory reserved it completed 8 of 8 (tools/hang_repro.ts).
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
  let mb: string | undefined;
  try {
    mb = (globalThis as { Deno?: { env: { get(k: string): string | undefined } } }).Deno?.env
      .get("LANTERN_WASM_RESERVE_MB");
  } catch { /* no env permission: use the default */ }
  const n = Number(mb);
  return mb && n > 0 ? Math.ceil((n * 2 ** 20) / 65536) : DEFAULT_RESERVE_PAGES;
}
