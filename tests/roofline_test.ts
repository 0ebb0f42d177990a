/**
 * The bench's roofline kernel (`bench/wasm_gemm.ts`) is a real GEMM: its hand-assembled WASM
 * computes what a 4·NV-column GEMM tile computes, and the model flop count matches the published
 * figures, so the "fastest WASM could run this model" bound rests on real arithmetic.
 */
import assert from "node:assert/strict";
import { gemmModule, hasRelaxedSimd, TILES } from "../bench/wasm_gemm.ts";
import { forwardFlops } from "../bench/roofline.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { HAS_MOBILENET, MOBILENET } from "./_helpers.ts";

Deno.test("the WASM GEMM kernel computes C = A·B on every tile, with and without FMA", () => {
  const fmas = hasRelaxedSimd() ? [false, true] : [false];
  for (const [mr, nv] of TILES) {
    for (const fma of fmas) {
      const inst = new WebAssembly.Instance(
        new WebAssembly.Module(gemmModule({ fma, mr, nv }) as BufferSource),
        {},
      );
      const { gemm, memory } = inst.exports as {
        gemm: (k: number, reps: number, a: number, b: number) => number;
        memory: WebAssembly.Memory;
      };
      const k = 7, cols = 4 * nv, bOffset = k * mr * 4;
      const a = new Float32Array(memory.buffer, 0, k * mr);
      const b = new Float32Array(memory.buffer, bOffset, k * cols);
      a.forEach((_, i) => a[i] = ((i * 7) % 11) / 8 - 0.5);
      b.forEach((_, i) => b[i] = ((i * 5) % 13) / 16 - 0.25);
      // The kernel returns Σ over the tile's rows and column blocks of lane 0 (column 4j).
      let expected = 0;
      for (let i = 0; i < mr; i++) {
        for (let j = 0; j < nv; j++) {
          for (let s = 0; s < k; s++) expected += a[s * mr + i] * b[s * cols + 4 * j];
        }
      }
      const got = gemm(k, 1, 0, bOffset);
      assert.ok(
        Math.abs(got - expected) <= 1e-5 * Math.max(1, Math.abs(expected)),
        `tile ${mr}×${cols} fma=${fma}: got ${got}, expected ${expected}`,
      );
    }
  }
});

Deno.test({
  name: "forward flops of MobileNetV2 are torchvision's published 300 M multiply-adds",
  ignore: !HAS_MOBILENET,
  async fn() {
    const model = await openModel(await Deno.readFile(MOBILENET), { backend: "wasm" });
    try {
      // torchvision's model card: 0.30 GFLOPS, counted as multiply-adds (2 flops each here).
      const gmacs = forwardFlops(model.proto.graph!, await model.tensors()) / 2e9;
      assert.ok(Math.abs(gmacs - 0.30) < 0.005, `got ${gmacs} G multiply-adds`);
    } finally {
      await model.dispose();
    }
  },
});
