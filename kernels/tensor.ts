/**
 * The one tensor contract every Lantern stage consumes and produces.
 *
 * A tensor is a float32 array with its dims and a layout tag. Data normally lives on the CPU
 * (`location: "cpu"`); a backend may keep it on the GPU (`location: "gpu"`) and attach a
 * {@linkcode GpuData} handle, in which case {@linkcode toCpu} downloads it on demand.
 * This module is Web-standard only (no `Deno` APIs) so it runs on edge runtimes.
 *
 * @module
 */

/** How the axes of a tensor are to be read. `"any"` makes no promise. */
export type Layout = "NCHW" | "NHWC" | "NC" | "N" | "any";

/** Handle on tensor data that stays on a GPU between stages. */
export interface GpuData {
  /** Copy the data to the CPU. */
  download(): Promise<Float32Array>;
  /** Release the GPU memory. */
  dispose(): void;
  /** The backend's own object (e.g. an onnxruntime `Tensor` with a GPU buffer). */
  readonly handle: unknown;
}

/** A float32 tensor: dims, data, layout, and where the data lives. */
export interface Tensor {
  /** Size of each axis, outermost first. */
  readonly dims: readonly number[];
  /** Row-major float32 data; empty while `location` is `"gpu"` and not yet downloaded. */
  readonly data: Float32Array;
  /** Meaning of the axes. */
  readonly layout: Layout;
  /** Where the data lives. */
  readonly location: "cpu" | "gpu";
  /** GPU handle when `location` is `"gpu"`. */
  readonly gpu?: GpuData;
}

/** Number of elements of a shape. */
export function sizeOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Guess a layout from the rank: 4 → NCHW, 2 → NC, 1 → N. */
export function defaultLayout(dims: readonly number[]): Layout {
  return dims.length === 4 ? "NCHW" : dims.length === 2 ? "NC" : dims.length === 1 ? "N" : "any";
}

/** Make a CPU tensor, checking that data and dims agree. */
export function tensor(
  data: Float32Array,
  dims: readonly number[],
  layout: Layout = defaultLayout(dims),
): Tensor {
  if (data.length !== sizeOf(dims)) {
    throw new Error(
      `Cannot make tensor: data has ${data.length} values but dims [${dims}] need ${sizeOf(dims)}`,
    );
  }
  return { dims: [...dims], data, layout, location: "cpu" };
}

/** A zero-filled CPU tensor. */
export function zeros(dims: readonly number[], layout?: Layout): Tensor {
  return tensor(new Float32Array(sizeOf(dims)), dims, layout);
}

/** Bring a tensor's data to the CPU (no copy if it is there already). */
export async function toCpu(t: Tensor): Promise<Tensor> {
  if (t.location === "cpu") return t;
  if (!t.gpu) throw new Error("Cannot download tensor: it is on the GPU but has no handle");
  return tensor(await t.gpu.download(), t.dims, t.layout);
}

/** Item `n` of the batch axis as a tensor of batch 1 (a view, no copy). */
export function batchItem(t: Tensor, n: number): Tensor {
  const per = sizeOf(t.dims.slice(1));
  return tensor(t.data.subarray(n * per, (n + 1) * per), [1, ...t.dims.slice(1)], t.layout);
}

/** The batch rows of `t` picked by `indices` (row r is `t[indices[r]]`); `t` itself for 0..N-1. */
export function gatherBatch(t: Tensor, indices: readonly number[]): Tensor {
  if (indices.length === t.dims[0] && indices.every((idx, i) => idx === i)) return t;
  const per = sizeOf(t.dims.slice(1));
  const out = new Float32Array(indices.length * per);
  indices.forEach((idx, r) => out.set(t.data.subarray(idx * per, (idx + 1) * per), r * per));
  return tensor(out, [indices.length, ...t.dims.slice(1)], t.layout);
}

/** Concatenate tensors along the batch axis. */
export function concatBatch(parts: readonly Tensor[]): Tensor {
  if (parts.length === 0) throw new Error("Cannot concatenate: no tensors given");
  const inner = parts[0].dims.slice(1);
  const total = parts.reduce((s, p) => s + p.dims[0], 0);
  const out = new Float32Array(total * sizeOf(inner));
  let off = 0;
  for (const p of parts) {
    if (p.dims.slice(1).join() !== inner.join()) {
      throw new Error(
        `Cannot concatenate batch: shape [${p.dims}] differs from [${parts[0].dims}] after axis 0`,
      );
    }
    out.set(p.data, off);
    off += p.data.length;
  }
  return tensor(out, [total, ...inner], parts[0].layout);
}

/** Smallest and largest value (NaN-free data assumed). */
export function valueRange(data: Float32Array): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return data.length ? [lo, hi] : [0, 0];
}
