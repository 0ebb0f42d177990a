/**
 * The data types that flow between pipeline stages: batches of inputs, models, explanations and
 * output files. Plugins of every kind are written against these.
 *
 * @module
 */
import type { Tensor } from "../kernels/tensor.ts";

/** An 8-bit RGBA picture, as decoded from a file or drawn by a render. */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  /** `width * height * 4` bytes, row-major RGBA. */
  readonly data: Uint8ClampedArray;
}

/** A batch of model inputs, with what renders need to draw over them. */
export interface Batch {
  /** Model-input-space tensor, `[N,C,H,W]`. */
  readonly tensor: Tensor;
  /** One name per image, used for output files (`<stem>_<method>.npy`). */
  readonly names: readonly string[];
  /** The image each input was made from, at model resolution (after resize and crop). */
  readonly images?: readonly RgbaImage[];
}

/** One tensor of a model graph, as `lantern layers` lists it. */
export interface TensorInfo {
  /** The ONNX tensor name. */
  readonly name: string;
  /** The op that produces it (`"input"` for graph inputs). */
  readonly op: string;
  /** The ONNX node name that produces it. */
  readonly node: string;
  /** Shape at batch 1 (`-1` where unknown). */
  readonly shape: readonly number[];
}

/** Which backend runs the model and why it was chosen. */
export interface BackendInfo {
  /** `wasm`, `webgpu` or `native`. */
  readonly name: "wasm" | "webgpu" | "native";
  /** Why this backend was chosen, in one sentence. */
  readonly reason: string;
  /** Worker threads (WASM). */
  readonly threads?: number;
  /** GPU adapter description (WebGPU). */
  readonly adapter?: string;
}

/** Options of one forward pass. */
export interface RunOptions {
  /** Extra tensors to read by ONNX name, beside the model's outputs. */
  readonly outputs?: readonly string[];
}

/** A loaded classifier that methods query. */
export interface Model {
  /** Display name (file name). */
  readonly name: string;
  /** The backend in use. */
  readonly backend: BackendInfo;
  /** Name of the image input. */
  readonly inputName: string;
  /** Input shape with `-1` for dynamic axes, e.g. `[-1,3,224,224]`. */
  readonly inputShape: readonly number[];
  /** Name of the output that holds the class scores. */
  readonly outputName: string;
  /** Class names, index-aligned with the scores, when known. */
  readonly labels?: readonly string[];
  /**
   * The model file's metadata (ONNX `metadata_props`). Lantern reads `lantern.preprocess`, a JSON
   * object of `image` preprocess parameters used when a pipeline sets none.
   */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Every tensor of the graph with its producing op and shape. */
  tensors(): Promise<readonly TensorInfo[]>;
  /** Run a forward pass; returns the class scores under `outputName` and any requested tensors. */
  run(input: Tensor, options?: RunOptions): Promise<Record<string, Tensor>>;
  /** The model's ONNX bytes (for graph analysis and rewriting). */
  readonly onnx: Uint8Array;
  /** Free the sessions. */
  dispose(): Promise<void>;
}

/** The result of one explanation method on a batch. */
export interface Explanation {
  /** Method name as registered. */
  readonly method: string;
  /** Target class of each row of `map` (one per image unless several targets were asked for). */
  readonly targets: readonly number[];
  /**
   * Image (batch index) of each row of `map` when an image has several targets; absent when
   * row i is image i.
   */
  readonly images?: readonly number[];
  /** Tensor the method looked at, if any. */
  readonly layer?: string;
  /** The attribution map; its shape is documented by each method. */
  readonly map: Tensor;
  /** Smallest and largest value of `map`. */
  readonly range: readonly [number, number];
  /** Wall-clock milliseconds by phase. */
  readonly timings: Readonly<Record<string, number>>;
  /** Backend that computed it. */
  readonly backend: string;
  /** Whether `map` lives in model-input space (`[N,C,H,W]`) or at a layer (`[N,1|C,h,w]`). */
  readonly space: "input" | "layer";
  /**
   * Method-specific facts (e.g. convergence delta, superpixel table). An array with one entry per
   * row of `map` is a per-row fact; renders split it by row.
   */
  readonly info?: Readonly<Record<string, unknown>>;
}

/** Class scores for one image, best first. */
export interface Prediction {
  readonly index: number;
  readonly label?: string;
  readonly score: number;
  readonly probability: number;
}

/** A file a render produced, not yet written; the runner writes all files at the end. */
export interface OutputFile {
  /** Path relative to the output directory. */
  readonly path: string;
  /** File contents. */
  readonly bytes: Uint8Array;
}
