/**
 * What bounds Lantern's WASM backend on this host: the peak of a WebAssembly SIMD128 GEMM kernel
 * (`bench/wasm_gemm.ts`) on 1 and all threads, PyTorch's sgemm on the same threads, and each
 * model's forward flops. Dividing the flops by the WASM peak gives the fastest any WASM engine
 * could run the model here, to set beside PyTorch's measured time.
 *
 * @module
 */
import type { GraphProto } from "../graph/onnx_io.ts";
import { WebWorker } from "../kernels/backend.ts";
import type { TensorInfo } from "../pipeline/types.ts";
import { hasRelaxedSimd, measureGemm, TILES } from "./wasm_gemm.ts";
import type { TorchWorker } from "./torch_worker.ts";

/** One kernel's peak, GFLOP/s, on one thread and on `threads` threads at once. */
export interface Peak {
  one: number;
  all: number;
  /** The fastest tile, e.g. `3×12`. */
  tile: string;
}

/** Peak throughputs, GFLOP/s. */
export interface Roofline {
  /** WASM SIMD128 kernel (multiply + add). */
  wasm: Peak;
  /** The same with relaxed SIMD's fused multiply-add, when the engine has it. */
  wasm_fma: Peak | null;
  /** PyTorch's sgemm (n = 1024) on one thread and on `threads`. */
  torch: { one: number; all: number };
  threads: number;
}

type Kernel = { fma: boolean; mr: number; nv: number; seconds: number };

async function onThreads(threads: number, kernel: Kernel): Promise<number> {
  const Web = WebWorker;
  if (!Web) throw new Error("Cannot measure the WASM kernel on threads: no Worker here");
  const workers = Array.from(
    { length: threads },
    () => new Web(new URL("./roofline_worker.ts", import.meta.url), { type: "module" }),
  );
  try {
    const results = await Promise.all(workers.map((w) =>
      new Promise<number>((resolve, reject) => {
        w.onmessage = (e) => resolve(e.data as number);
        w.onerror = (e) => reject(new Error(`Cannot measure the WASM kernel: ${e.message}`));
        w.postMessage(kernel);
      })
    ));
    return results.reduce((a, b) => a + b, 0);
  } finally {
    for (const w of workers) w.terminate();
  }
}

/** Measure the WASM kernel and PyTorch's sgemm on 1 and `threads` threads. */
export async function measureRoofline(torch: TorchWorker, threads: number): Promise<Roofline> {
  const peak = async (fma: boolean): Promise<Peak> => {
    let best = { one: 0, mr: 0, nv: 0 };
    for (const [mr, nv] of TILES) {
      const one = measureGemm({ fma, mr, nv, seconds: 0.5 });
      if (one > best.one) best = { one, mr, nv };
    }
    const all = await onThreads(threads, { fma, mr: best.mr, nv: best.nv, seconds: 1 });
    return { one: best.one, all, tile: `${best.mr}×${4 * best.nv}` };
  };
  const wasm = await peak(false);
  const wasm_fma = hasRelaxedSimd() ? await peak(true) : null;
  const reply = await torch.request({ op: "gemm", n: 1024, threads: [1, threads] });
  const gflops = reply.gflops as number[];
  return { wasm, wasm_fma, torch: { one: gflops[0], all: gflops[1] }, threads };
}

/**
 * Multiply-add flops (2 per MAC) of one forward pass at batch 1 in Conv, ConvTranspose, Gemm and
 * MatMul nodes, which hold all but a fraction of a percent of a CNN's arithmetic.
 */
export function forwardFlops(graph: GraphProto, tensors: readonly TensorInfo[]): number {
  const shape = new Map(tensors.map((t) => [t.name, t.shape]));
  const dims = new Map(graph.initializer.map((t) => [t.name, t.dims.map(Number)]));
  const count = (s: readonly number[] | undefined) =>
    s && s.every((d) => d > 0) ? s.reduce((a, b) => a * b, 1) : 0;
  let flops = 0;
  for (const node of graph.node) {
    const w = dims.get(node.input[1]);
    const out = shape.get(node.output[0]);
    if (!w || !out) continue;
    if (node.opType === "Conv") {
      // Each output value is a dot product over in/group × kh × kw.
      flops += 2 * count(out) * count(w.slice(1));
    } else if (node.opType === "ConvTranspose") {
      flops += 2 * count(shape.get(node.input[0])) * count(w.slice(1));
    } else if (node.opType === "Gemm" || node.opType === "MatMul") {
      flops += 2 * count(out) * (count(w) / Math.max(1, out[out.length - 1]));
    }
  }
  return flops;
}
