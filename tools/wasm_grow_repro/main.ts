/**
 * The V8/Deno bug behind onnxruntime-web's multi-threaded hang, without onnxruntime: a worker
 * spins in wasm on a flag in a shared memory; the main thread grows the memory, writes beyond the
 * old end and sets the flag; the worker then reads that address. Deno runs wasm with explicit
 * bounds checks, and the spinning worker's optimized code keeps the old memory size, so the read
 * traps with "memory access out of bounds" in about half the runs here (Node, with V8's trap
 * handler, prints 42; Node with
 * `--wasm-enforce-bounds-checks` fails the same way). Inside onnxruntime the dead worker leaves
 * the main thread spinning forever. See kernels/wasm_memory.ts for the fix.
 *
 *   deno run --allow-read --v8-flags=--no-liftoff tools/wasm_grow_repro/main.ts
 *
 * @module
 */
const mem = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
const addr = 100 * 65536 + 16;
const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
const done = new Promise((resolve) => {
  w.onmessage = (e) => {
    if (!e.data.ready) resolve(e.data);
  };
});
w.postMessage({ mem, addr });
await new Promise((r) => setTimeout(r, 500)); // worker spins in wasm on the flag
mem.grow(200);
new Int32Array(mem.buffer)[addr / 4] = 42;
Atomics.store(new Int32Array(mem.buffer), 0, 1);
console.log("worker result:", await done);
w.terminate();
