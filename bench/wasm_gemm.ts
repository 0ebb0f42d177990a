/**
 * A WebAssembly SIMD128 GEMM micro-kernel, assembled here byte by byte (no toolchain is installed
 * or reachable), to measure the best a WASM convolution could do on this CPU.
 *
 * The kernel is the inner loop of every fast WASM GEMM (XNNPACK's `f32-gemm-MRx8-wasmsimd-splat`):
 * an MR × 4·NV tile of C stays in `v128` registers; each step loads NV vectors of B, broadcasts MR
 * floats of A and does MR·NV vector multiply-adds. A and B panels are L1-resident, so no memory
 * stall hides the arithmetic: what it measures is the peak of the instruction set as V8 compiles
 * it. V8 gives WASM 15 XMM registers; a tile that needs more (4 × 12: 12 accumulators, 3 B
 * vectors, A and the product) spills and runs 25% slower, hence {@linkcode TILES}.
 *
 * `fma: false` multiplies and adds (`f32x4.mul` + `f32x4.add`, all that WASM SIMD128 has);
 * `fma: true` uses relaxed SIMD's `f32x4.relaxed_madd`, which V8 compiles to one FMA.
 *
 * @module
 */

/** Tiles `[MR, NV]` (MR rows × 4·NV columns) that fit V8's registers; the best one is the peak. */
export const TILES: readonly (readonly [number, number])[] = [[3, 3], [5, 2], [6, 2]];

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

/** Signed LEB128 (the immediate of `i32.const`), for non-negative `n`. */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if (n === 0 && !(byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

const name = (s: string) => [...leb(s.length), ...new TextEncoder().encode(s)];

// Opcodes (WebAssembly core 2.0, SIMD and relaxed SIMD proposals).
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, I32_CONST = 0x41, I32_ADD = 0x6a, I32_SUB = 0x6b;
const LOOP = 0x03, BR_IF = 0x0d, END = 0x0b, EMPTY = 0x40, F32_ADD = 0x92;
const simd = (op: number) => [0xfd, ...leb(op)];
const V128_LOAD = 0x00, V128_LOAD32_SPLAT = 0x09, F32X4_EXTRACT = 0x1f, F32X4_ADD = 0xe4;
const F32X4_MUL = 0xe6, F32X4_RELAXED_MADD = 0x105;

/**
 * The module: exports `memory` (1 page) and `gemm(k, reps, a, b) → f32`, which runs `reps` times
 * over a K-step panel (A at byte `a`, MR·K floats; B at byte `b`, 4·NV·K floats) and returns the
 * sum of the tile so that nothing is dead code.
 */
export function gemmModule(options: { fma: boolean; mr: number; nv: number }): Uint8Array {
  const MR = options.mr, NV = options.nv;
  const C = (i: number) => 4 + i, B = (j: number) => 4 + MR * NV + j, AV = 4 + MR * NV + NV;
  const PA = AV + 1, PB = AV + 2, KK = AV + 3;
  const get = (i: number) => [LOCAL_GET, ...leb(i)];
  const set = (i: number) => [LOCAL_SET, ...leb(i)];
  const step: number[] = [];
  for (let j = 0; j < NV; j++) step.push(...get(PB), ...simd(V128_LOAD), 4, j * 16, ...set(B(j)));
  for (let i = 0; i < MR; i++) {
    step.push(...get(PA), ...simd(V128_LOAD32_SPLAT), 2, i * 4, ...set(AV));
    for (let j = 0; j < NV; j++) {
      const c = C(i * NV + j);
      if (options.fma) {
        step.push(...get(AV), ...get(B(j)), ...get(c), ...simd(F32X4_RELAXED_MADD), ...set(c));
      } else {
        step.push(...get(c), ...get(AV), ...get(B(j)), ...simd(F32X4_MUL));
        step.push(...simd(F32X4_ADD), ...set(c));
      }
    }
  }
  const advance = (local: number, bytes: number) => [
    ...get(local),
    I32_CONST,
    ...sleb(bytes),
    I32_ADD,
    ...set(local),
  ];
  const decrement = (local: number) => [...get(local), I32_CONST, 1, I32_SUB, ...set(local)];
  const body = [
    ...[2, MR * NV + NV + 1, 0x7b, 3, 0x7f], // local groups: v128 tile, B, A; 3 × i32
    LOOP,
    EMPTY,
    ...get(2),
    ...set(PA),
    ...get(3),
    ...set(PB),
    ...get(0),
    ...set(KK),
    LOOP,
    EMPTY,
    ...step,
    ...advance(PA, 4 * MR),
    ...advance(PB, 16 * NV),
    ...decrement(KK),
    ...get(KK),
    BR_IF,
    0,
    END,
    ...decrement(1),
    ...get(1),
    BR_IF,
    0,
    END,
    // Sum lane 0 of every accumulator.
    ...get(C(0)),
    ...simd(F32X4_EXTRACT),
    0,
  ];
  for (let i = 1; i < MR * NV; i++) body.push(...get(C(i)), ...simd(F32X4_EXTRACT), 0, F32_ADD);
  body.push(END);
  const i32 = 0x7f, f32 = 0x7d;
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 4, i32, i32, i32, i32, 1, f32]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0x00, 1]),
    ...section(7, [2, ...name("gemm"), 0x00, 0, ...name("memory"), 0x02, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

/** Whether this engine accepts relaxed SIMD (V8 ships it on by default since 11.4). */
export function hasRelaxedSimd(): boolean {
  return WebAssembly.validate(gemmModule({ fma: true, mr: 1, nv: 1 }) as BufferSource);
}

/**
 * GFLOP/s of the kernel on this thread for about `seconds` (panels of K = 256 steps, ≤ 20 KiB,
 * L1-resident), after a warm-up that tiers the function up to V8's optimizing compiler.
 */
export function measureGemm(
  options: { fma: boolean; mr: number; nv: number; seconds?: number },
): number {
  const inst = new WebAssembly.Instance(
    new WebAssembly.Module(gemmModule(options) as BufferSource),
    {},
  );
  const { gemm, memory } = inst.exports as {
    gemm: (k: number, reps: number, a: number, b: number) => number;
    memory: WebAssembly.Memory;
  };
  const { mr, nv } = options;
  const k = 256, a = 0, b = k * 4 * mr;
  // Values near 1/k keep the sums far from overflow and denormals.
  new Float32Array(memory.buffer, 0, k * (mr + 4 * nv)).fill(1 / 4096);
  let sink = 0;
  for (let i = 0; i < 20; i++) sink += gemm(k, 200, a, b);
  const seconds = options.seconds ?? 0.5;
  let reps = 200, calls = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < seconds * 1000) {
    sink += gemm(k, reps, a, b);
    calls += reps;
    elapsed = performance.now() - start;
    reps = Math.min(reps * 2, 20000);
  }
  if (!Number.isFinite(sink)) {
    throw new Error("Cannot measure the WASM GEMM kernel: sum overflowed");
  }
  // Each step: MR·NV vector multiply-adds of 4 lanes, 2 flops each.
  return calls * k * mr * nv * 8 / (elapsed / 1000) / 1e9;
}
