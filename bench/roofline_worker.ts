/**
 * Worker of `bench/roofline.ts`: measures the WASM GEMM kernel on its own thread when told to, so
 * that several run at once.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { measureGemm } from "./wasm_gemm.ts";

self.onmessage = (
  e: MessageEvent<{ fma: boolean; mr: number; nv: number; seconds: number }>,
) => {
  self.postMessage(measureGemm(e.data));
};
