/**
 * `lantern doctor`: which backend `auto` picks and why, with SIMD, threads and the WebGPU adapter.
 *
 * @module
 */
import { chooseBackend, hardwareThreads, probeWebGpu } from "../kernels/backend.ts";

// The smallest module using a v128 instruction: WebAssembly.validate says whether SIMD works.
const SIMD_PROBE = new Uint8Array([
  0,
  97,
  115,
  109,
  1,
  0,
  0,
  0,
  1,
  5,
  1,
  96,
  0,
  1,
  123,
  3,
  2,
  1,
  0,
  10,
  10,
  1,
  8,
  0,
  65,
  0,
  253,
  15,
  253,
  98,
  11,
]);

/** Facts `doctor` reports. */
export interface DoctorReport {
  backend: string;
  reason: string;
  simd: boolean;
  threads: number;
  sharedMemory: boolean;
  webgpu: { api: boolean; adapter?: string; software?: boolean };
  runtime: string;
}

/** Gather the report. */
export async function doctor(): Promise<DoctorReport> {
  const choice = await chooseBackend("auto");
  const adapter = await probeWebGpu();
  return {
    backend: choice.name,
    reason: choice.reason,
    simd: WebAssembly.validate(SIMD_PROBE),
    threads: hardwareThreads(),
    sharedMemory: typeof SharedArrayBuffer !== "undefined",
    webgpu: { api: adapter.api, adapter: adapter.description, software: adapter.software },
    runtime: `Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`,
  };
}

/** The report as lines of text. */
export function formatDoctor(r: DoctorReport): string {
  return [
    `backend:  ${r.backend} — ${r.reason}`,
    `simd:     ${r.simd ? "yes" : "no"}`,
    `threads:  ${r.threads} (${
      r.sharedMemory ? "SharedArrayBuffer available" : "no SharedArrayBuffer: 1 thread"
    })`,
    `webgpu:   ${
      !r.webgpu.api
        ? "no WebGPU API in this runtime"
        : r.webgpu.adapter
        ? `${r.webgpu.adapter}${
          r.webgpu.software ? " (software adapter: never chosen by auto)" : ""
        }`
        : "API present, no adapter"
    }`,
    `runtime:  ${r.runtime}`,
  ].join("\n");
}
