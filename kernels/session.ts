/**
 * onnxruntime-web sessions behind a small interface: feeds and fetches are Lantern tensors.
 * Runs on one session are serialized, since onnxruntime-web does not allow concurrent `run`s.
 *
 * @module
 */
import { chooseBackend, executionProviders, loadOrt, type Ort } from "./backend.ts";
import type { BackendRequest } from "./backend.ts";
import { type Tensor, tensor } from "./tensor.ts";
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

/** Create a session for ONNX `bytes` on `backend`. */
export async function createSession(
  bytes: Uint8Array,
  backend: BackendInfo,
): Promise<GraphSession> {
  const ort = await loadOrt(backend);
  let session: OrtSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: executionProviders(backend),
      graphOptimizationLevel: "all",
    });
  } catch (e) {
    throw new Error(`Cannot load ONNX model on ${backend.name}: ${firstLine(e)}`);
  }
  let queue: Promise<unknown> = Promise.resolve();
  const run = async (feeds: Record<string, Tensor>, fetches?: readonly string[]) => {
    const ortFeeds: Record<string, InstanceType<Ort["Tensor"]>> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new ort.Tensor("float32", t.data, t.dims as number[]);
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

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}
