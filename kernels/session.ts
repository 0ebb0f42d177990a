/**
 * onnxruntime sessions behind a small interface: feeds and fetches are Lantern tensors. The same
 * code serves onnxruntime-web (WASM, WebGPU) and onnxruntime-node (native), whose tensor and
 * session APIs are the same. Runs on one session are serialized, since onnxruntime-web does not
 * allow concurrent `run`s.
 *
 * On WebGPU, outputs named in `gpuOutputs` stay on the GPU (onnxruntime's IO binding:
 * `preferredOutputLocation: "gpu-buffer"`) and come back as `location: "gpu"` tensors; feeding
 * such a tensor to another WebGPU session passes its buffer without a round trip through the CPU.
 * Elsewhere `gpuOutputs` is ignored and GPU feeds are downloaded first.
 *
 * @module
 */
import { chooseBackend, loadOrt, type Ort, sessionOptions } from "./backend.ts";
import type { BackendRequest } from "./backend.ts";
import { defaultLayout, type GpuData, type Tensor, tensor, toCpu } from "./tensor.ts";
import { firstLine } from "../pipeline/errors.ts";
import type { BackendInfo } from "../pipeline/types.ts";

/** A compiled graph that maps named input tensors to named output tensors. */
export interface GraphSession {
  /** Names of the graph's inputs. */
  readonly inputNames: readonly string[];
  /** Names of the graph's outputs. */
  readonly outputNames: readonly string[];
  /** Run with `feeds`, returning the outputs named in `fetches` (all outputs by default). */
  run(feeds: Record<string, Tensor>, fetches?: readonly string[]): Promise<Record<string, Tensor>>;
  /** Release the session. */
  release(): Promise<void>;
}

type OrtSession = Awaited<ReturnType<Ort["InferenceSession"]["create"]>>;
type OrtTensor = InstanceType<Ort["Tensor"]>;

/** Options for {@linkcode createSession}. */
export interface SessionOptions {
  /** Outputs to leave on the GPU (WebGPU only), returned as `location: "gpu"` tensors. */
  readonly gpuOutputs?: readonly string[];
}

/** Create a session for ONNX `bytes` on `backend`. */
export async function createSession(
  bytes: Uint8Array,
  backend: BackendInfo,
  options: SessionOptions = {},
): Promise<GraphSession> {
  const ort = await loadOrt(backend);
  const onGpu = backend.name === "webgpu" ? new Set(options.gpuOutputs ?? []) : new Set<string>();
  let session: OrtSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      ...sessionOptions(backend),
      ...(onGpu.size
        ? { preferredOutputLocation: Object.fromEntries([...onGpu].map((n) => [n, "gpu-buffer"])) }
        : {}),
    });
  } catch (e) {
    throw new Error(`Cannot load ONNX model on ${backend.name}: ${firstLine(e)}`);
  }
  let queue: Promise<unknown> = Promise.resolve();
  // onnxruntime-web runs on the calling thread and settles through microtasks only, so a method
  // of a thousand runs would hold the event loop for its whole length: a server could neither
  // read other requests nor fire a timeout. A turn of the event loop before each run lets them
  // in. onnxruntime-node runs off the main thread and needs none.
  const turn = backend.name === "native" ? undefined : macrotask;
  const run = async (feeds: Record<string, Tensor>, fetches?: readonly string[]) => {
    if (turn) await turn();
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      const handle = t.gpu?.handle as OrtTensor | undefined;
      if (t.location === "gpu" && backend.name === "webgpu" && handle instanceof ort.Tensor) {
        ortFeeds[name] = handle;
      } else {
        const data = t.location === "gpu" ? (await toCpu(t)).data : t.data;
        ortFeeds[name] = new ort.Tensor("float32", data, t.dims as number[]);
      }
    }
    const names = fetches ? [...fetches] : [...session.outputNames];
    let out;
    try {
      out = await session.run(ortFeeds, names);
    } catch (e) {
      throw new Error(`Cannot run ONNX model on ${backend.name}: ${firstLine(e)}`);
    }
    const result: Record<string, Tensor> = {};
    for (const name of names) {
      const value = out[name];
      if (value.location === "gpu-buffer") {
        result[name] = gpuTensor(value);
        continue;
      }
      const data = value.type === "float32"
        ? value.data as Float32Array
        : Float32Array.from(value.data as ArrayLike<number>, Number);
      result[name] = tensor(data, value.dims);
    }
    return result;
  };
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    run(feeds, fetches) {
      const next = queue.then(() => run(feeds, fetches));
      queue = next.catch(() => {});
      return next;
    },
    release: () => session.release(),
  };
}

/** Choose the backend for `request` and create a session on it. */
export async function openSession(
  bytes: Uint8Array,
  request: BackendRequest,
): Promise<{ session: GraphSession; backend: BackendInfo }> {
  const backend = await chooseBackend(request);
  return { session: await createSession(bytes, backend), backend };
}

/** A Lantern tensor over an onnxruntime tensor that lives in a GPU buffer. */
function gpuTensor(value: OrtTensor): Tensor {
  const gpu: GpuData = {
    download: async () => {
      const data = await value.getData();
      return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    },
    dispose: () => value.dispose(),
    handle: value,
  };
  const dims = [...value.dims];
  return { dims, data: new Float32Array(0), layout: defaultLayout(dims), location: "gpu", gpu };
}

const ONE_BYTE = new Uint8Array(1);

/**
 * A turn of the event loop (timers fire, sockets are read). A tiny `crypto.subtle.digest` gives
 * one for ~17 µs: it settles through the host's event loop, which polls its sockets and timers on
 * the way. The alternatives measured worse: a `setTimeout(0)` turn costs ~2.1 ms here (timer
 * granularity; 70% of a small model's run, 10% of a MobileNetV2 Grad-CAM), and a `MessageChannel`
 * message lets timers fire but not `Deno.serve` read new requests. Hosts without Web Crypto get the
 * timer turn.
 */
async function macrotask(): Promise<void> {
  if (globalThis.crypto?.subtle) await crypto.subtle.digest("SHA-256", ONE_BYTE);
  else await new Promise((resolve) => setTimeout(resolve, 0));
}
