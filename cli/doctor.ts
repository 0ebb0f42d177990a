/**
 * `lantern doctor`: every backend candidate (WebGPU adapter, native onnxruntime, WASM), which one
 * `auto` picks and why, and what would make a faster one available.
 *
 * @module
 */
import { chooseBackend, hardwareThreads, probeNative, probeWebGpu } from "../kernels/backend.ts";

// The smallest module using a v128 instruction: WebAssembly.validate says whether SIMD works.
const SIMD_PROBE = Uint8Array.from(
  atob("AGFzbQEAAAABBQFgAAF7AwIBAAoKAQgAQQD9D/1iCw=="),
  (c) => c.charCodeAt(0),
);

/** Facts `doctor` reports. */
export interface DoctorReport {
  /** The backend `auto` picks. */
  backend: string;
  /** Why `auto` picks it. */
  reason: string;
  /** Whether WASM SIMD works. */
  simd: boolean;
  /** Logical cores: WASM and native threads. */
  threads: number;
  /** Whether WASM may use threads at all. */
  sharedMemory: boolean;
  /** The WebGPU adapter, if any; software adapters are never picked by `auto`. */
  webgpu: { api: boolean; adapter?: string; software?: boolean };
  /** Whether the native onnxruntime (onnxruntime-node) loads here, and why not. */
  native: { available: boolean; reason: string; version?: string };
  /** One line on how to get a faster backend than the one picked, when there is a way. */
  hint?: string;
  /** Runtime and version. */
  runtime: string;
}

/** Gather the report. */
export async function doctor(): Promise<DoctorReport> {
  const choice = await chooseBackend("auto");
  const adapter = await probeWebGpu();
  const native = await probeNative();
  const sharedMemory = typeof SharedArrayBuffer !== "undefined";
  // Only an actionable hint: the one thing that unlocks a faster backend on this host.
  const hint = choice.name === "wasm" ? native.hint : undefined;
  return {
    backend: choice.name,
    reason: choice.reason,
    simd: WebAssembly.validate(SIMD_PROBE),
    threads: hardwareThreads(),
    sharedMemory,
    webgpu: { api: adapter.api, adapter: adapter.description, software: adapter.software },
    native: { available: native.available, reason: native.reason, version: native.version },
    hint,
    runtime: `Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`,
  };
}

/** The report as lines of text. */
export function formatDoctor(r: DoctorReport): string {
  const webgpu = !r.webgpu.api
    ? "no WebGPU API in this runtime"
    : !r.webgpu.adapter
    ? "API present, no adapter"
    : r.webgpu.software
    ? `${r.webgpu.adapter} (software adapter: never chosen by auto, --backend webgpu uses it)`
    : `${r.webgpu.adapter} (hardware adapter: chosen first by auto)`;
  const native = r.native.available
    ? `available (${r.native.reason}; ${r.threads} threads)`
    : `unavailable: ${r.native.reason}`;
  const wasm = `always available; SIMD ${r.simd ? "yes" : "no"}, ${
    r.sharedMemory ? `${r.threads} threads` : "1 thread (no SharedArrayBuffer)"
  }`;
  return [
    `auto:     ${r.backend} — ${r.reason}`,
    `webgpu:   ${webgpu}`,
    `native:   ${native}`,
    `wasm:     ${wasm}`,
    ...(r.hint ? [`hint:     ${r.hint}`] : []),
    `runtime:  ${r.runtime}`,
  ].join("\n");
}
