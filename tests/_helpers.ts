/** Shared test helpers: fixture paths, tolerances, and small array comparisons. */
import { decodeNpy } from "../kernels/npy.ts";
import { type Tensor, tensor } from "../kernels/tensor.ts";

/** Repository root (absolute). */
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** The shared pretrained MobileNetV2 beside the checkout. */
export const MOBILENET = `${ROOT}/../shared/models/imagenet/mobilenet_v2_float32.onnx`;
/**
 * Whether the shared pretrained MobileNetV2 is present (`../shared` beside the checkout); tests
 * that need it are reported as ignored where it is not.
 */
export const HAS_MOBILENET = (() => {
  try {
    return Deno.statSync(MOBILENET).isFile;
  } catch {
    return false;
  }
})();
/** The bundled emotion classifier. */
export const EMOTION = `${ROOT}/examples/models/emotion.onnx`;

/** Read a `.npy` fixture relative to the repository root. */
export function fixture(path: string): Tensor {
  return decodeNpy(Deno.readFileSync(`${ROOT}/${path}`), path);
}

/** max |a − b| / max |b| (the relative error used against torch references). */
export function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`Length mismatch: ${a.length} vs ${b.length}`);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / (scale || 1);
}

/** max |a − b|. */
export function maxAbsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`Length mismatch: ${a.length} vs ${b.length}`);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  return diff;
}

/** Whether a WebGPU adapter (any, software included) is available. */
export async function hasWebGpu(): Promise<boolean> {
  const { probeWebGpu } = await import("../kernels/backend.ts");
  return Boolean((await probeWebGpu()).description);
}

// Mesa's Vulkan loader prints "XDG_RUNTIME_DIR is invalid" on every WebGPU probe when the variable
// is unset (CI); the CLI gives it a private directory, and so do the tests.
function quietMesa(): void {
  if (Deno.build.os !== "linux" || Deno.env.get("XDG_RUNTIME_DIR")) return;
  const dir = Deno.makeTempDirSync({ prefix: "lantern-test-xdg-" });
  Deno.env.set("XDG_RUNTIME_DIR", dir);
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
}
quietMesa();

/** Whether the native onnxruntime (onnxruntime-node) loads here: Deno with `--allow-ffi`. */
export async function hasNative(): Promise<boolean> {
  const { probeNative } = await import("../kernels/backend.ts");
  return (await probeNative()).available;
}

/** A method's input for `x` on `model`: the logits are computed, names are `img0`, `img1`, …. */
export async function methodInput(
  model: import("../pipeline/types.ts").Model,
  x: Tensor,
  extra: Partial<import("../pipeline/plugin.ts").MethodInput> = {},
): Promise<import("../pipeline/plugin.ts").MethodInput> {
  const logits = (await model.run(x))[model.outputName];
  const names = Array.from({ length: x.dims[0] }, (_, i) => `img${i}`);
  return { model, batch: { tensor: x, names }, logits, ...extra };
}

/** Run the registered method `name` with `params` (validated by its schema). */
export async function runMethod(
  name: string,
  input: import("../pipeline/plugin.ts").MethodInput,
  params: Record<string, unknown>,
): Promise<import("../pipeline/types.ts").Explanation> {
  const { getPlugin } = await import("../pipeline/registry.ts");
  const plugin = getPlugin("method", name) as import("../pipeline/plugin.ts").MethodPlugin<
    unknown
  >;
  return await plugin.run(input, plugin.params.parse(params));
}

/** A linear classifier in JS, no ONNX: class 0 scores Σ_p x_p·v_p, class 1 the negative. */
export function linearModel(
  v: Float32Array,
  dims: number[],
): import("../pipeline/types.ts").Model {
  return {
    name: "linear",
    backend: { name: "wasm", reason: "test" },
    inputName: "x",
    inputShape: [-1, ...dims],
    outputName: "y",
    tensors: () => Promise.resolve([]),
    run(x) {
      const per = v.length, n = x.dims[0];
      const out = new Float32Array(n * 2);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let p = 0; p < per; p++) s += x.data[i * per + p] * v[p];
        out[2 * i] = s;
        out[2 * i + 1] = -s;
      }
      return Promise.resolve({ y: tensor(out, [n, 2]) });
    },
    onnx: new Uint8Array(),
    dispose: () => Promise.resolve(),
  };
}
