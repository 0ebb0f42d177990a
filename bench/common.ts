/**
 * What the bench modules share: paths, statistics, memory readings and formatting.
 *
 * @module
 */

/** The repository root. */
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** Where the bench writes results and generated models (never committed). */
export const OUT = `${ROOT}/out/bench`;
/** Debian's Python, which has torch and torchvision. */
export const PYTHON = "/usr/bin/python3";
/** The PyTorch side of the bench. */
export const TORCH_BENCH = `${ROOT}/bench/torch_bench.py`;
/** The shared pretrained MobileNetV2. */
export const MOBILENET = new URL(
  "../../shared/models/imagenet/mobilenet_v2_float32.onnx",
  import.meta.url,
).pathname;
/** ResNet-50 with random weights, exported by `torch_bench.py export` on first use. */
export const RESNET50 = `${OUT}/resnet50.onnx`;
/** ImageNet classes. */
export const CLASSES = 1000;
/** Values in one 3×224×224 input. */
export const PIXELS = 3 * 224 * 224;

/** Median of `values`. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** max |a − b| / max |b| and ‖a − b‖₂ / ‖b‖₂. */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; l2: number } {
  let diff = 0, scale = 0, d2 = 0, b2 = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    diff = Math.max(diff, Math.abs(d));
    scale = Math.max(scale, Math.abs(b[i]));
    d2 += d * d;
    b2 += b[i] * b[i];
  }
  return { max: diff / (scale || 1), l2: Math.sqrt(d2 / (b2 || 1)) };
}

/** Resolve after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Bytes as whole MiB, `n/a` when unknown. */
export function mib(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? "n/a" : `${(bytes / 2 ** 20).toFixed(0)}`;
}

/** Milliseconds with three significant-ish digits. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

/** The trimmed stdout of a command, or "" when it fails. */
export async function command(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, cwd: ROOT, stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

/** The 1/5/15-minute load averages. */
export function loadavg(): string {
  try {
    return Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
  } catch {
    return "n/a";
  }
}

/** Peak RSS since the last {@linkcode resetPeakRss} (VmHWM), or undefined off Linux. */
export function peakRss(): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Reset the kernel's peak-RSS counter (Linux ≥ 4.0); false where that is not possible. */
export function resetPeakRss(): boolean {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

// onnxruntime-web creates its threaded heap with `new WebAssembly.Memory` on the main thread;
// wrapping the constructor before the runtime loads is the only way to see the heap's size.
const heaps: WebAssembly.Memory[] = [];

/** Record every WebAssembly memory created from now on (call before onnxruntime loads). */
export function trackWasmHeaps(): void {
  const Native = WebAssembly.Memory;
  class Tracked extends Native {
    constructor(descriptor: WebAssembly.MemoryDescriptor) {
      super(descriptor);
      heaps.push(this);
    }
  }
  (WebAssembly as { Memory: typeof Native }).Memory = Tracked;
}

/** Size of the largest tracked WebAssembly heap. */
export function wasmHeapBytes(): number | undefined {
  return heaps.length ? Math.max(...heaps.map((m) => m.buffer.byteLength)) : undefined;
}
