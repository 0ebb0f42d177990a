import assert from "node:assert/strict";
import {
  chooseBackend,
  hardwareThreads,
  probeNative,
  probeWebGpu,
  sessionOptions,
} from "../kernels/backend.ts";
import { openModel } from "../plugins/model/onnx_model.ts";
import { createSession } from "../kernels/session.ts";
import { sizeOf, tensor, toCpu } from "../kernels/tensor.ts";
import { GraphBuilder, makeModel, makeValueInfo } from "../graph/builder.ts";
import { encodeModel } from "../graph/onnx_io.ts";
import { Random } from "../kernels/random.ts";
import {
  EMOTION,
  HAS_MOBILENET,
  hasNative,
  hasWebGpu,
  maxAbsError,
  MOBILENET,
  ROOT,
} from "./_helpers.ts";

Deno.test("auto: hardware WebGPU, else native when loadable, else WASM; never a software adapter", async () => {
  const adapter = await probeWebGpu();
  const native = await probeNative();
  const choice = await chooseBackend("auto");
  const hardware = Boolean(adapter.description) && !adapter.software;
  assert.equal(choice.name, hardware ? "webgpu" : native.available ? "native" : "wasm");
  assert.ok(choice.reason.length > 0);
  if (choice.name !== "webgpu") assert.equal(choice.threads, navigator.hardwareConcurrency);
});

Deno.test("native sessions use every core and full graph optimization", async () => {
  if (!await hasNative()) {
    console.warn("skipped: native backend unavailable (run with --allow-ffi)");
    return;
  }
  const backend = await chooseBackend("native");
  assert.equal(backend.threads, hardwareThreads());
  const options = sessionOptions(backend);
  assert.deepEqual(options.executionProviders, ["cpu"]);
  assert.equal(options.intraOpNumThreads, hardwareThreads());
  assert.equal(options.graphOptimizationLevel, "all");
});

async function lantern(permissions: string[], ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, `${ROOT}/cli/main.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("without --allow-ffi native is unavailable, doctor says why and how, WASM serves", async () => {
  const noFfi = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys"];
  const doctor = await lantern(noFfi, "doctor", "--json");
  assert.equal(doctor.code, 0, doctor.stderr);
  const report = JSON.parse(doctor.stdout);
  assert.equal(report.native.available, false);
  assert.match(report.native.reason, /--allow-ffi/);
  if (report.backend === "wasm") {
    assert.match(report.reason, /native is unavailable/);
    assert.match(report.hint, /--allow-ffi/);
  }
  const text = await lantern(noFfi, "doctor");
  assert.match(text.stdout, /^native: +unavailable: Deno runs without the ffi permission/m);
  assert.match(text.stdout, /^wasm: +always available; SIMD yes/m);
  const forced = await lantern(
    noFfi,
    "layers",
    EMOTION,
    "--backend",
    "native",
  );
  assert.equal(forced.code, 1);
  assert.match(
    forced.stderr,
    /^error: Cannot use backend "native": Deno runs without the ffi permission .* use --backend wasm$/m,
  );
});

Deno.test("with --allow-ffi doctor reports native available", async () => {
  if (!await hasNative()) {
    console.warn("skipped: native backend unavailable (run with --allow-ffi)");
    return;
  }
  const doctor = await lantern(["--allow-all"], "doctor", "--json");
  assert.equal(doctor.code, 0, doctor.stderr);
  const report = JSON.parse(doctor.stdout);
  assert.equal(report.native.available, true);
  assert.equal(report.native.version, "1.30.0");
  assert.ok(["native", "webgpu"].includes(report.backend));
});

for (const other of ["native", "webgpu"] as const) {
  Deno.test(`WASM and ${other} give the same logits within 1e-4`, async (t) => {
    if (!(other === "native" ? await hasNative() : await hasWebGpu())) {
      console.warn(`skipped: no ${other} backend here`);
      return;
    }
    for (
      const [name, path, dims] of [
        ["emotion", EMOTION, [2, 1, 64, 64]],
        ["mobilenet_v2", MOBILENET, [1, 3, 224, 224]],
      ] as const
    ) {
      if (path === MOBILENET && !HAS_MOBILENET) continue;
      await t.step(name, async () => {
        const bytes = Deno.readFileSync(path);
        const n = sizeOf(dims);
        // A view at an offset into a larger buffer, as batch slices are: the backends must honour
        // byteOffset.
        const buffer = new Random(7).fillNormal(new Float32Array(n + 5));
        const x = tensor(buffer.subarray(5), dims);
        const wasm = await openModel(bytes, { name, backend: "wasm" });
        const b = await openModel(bytes, { name, backend: other });
        assert.equal(b.backend.name, other);
        const ya = (await wasm.run(x))[wasm.outputName];
        const yb = (await b.run(x))[b.outputName];
        const err = maxAbsError(ya.data, yb.data);
        console.log(
          `${name}: max |wasm − ${other}| = ${err.toExponential(2)}${
            b.backend.adapter ? ` on ${b.backend.adapter}` : ""
          }`,
        );
        assert.ok(err < 1e-4, `logits differ by ${err}`);
        await wasm.dispose();
        await b.dispose();
      });
    }
  });
}

/** y = x·x over [N,4]: a graph whose output can be fed back as its input. */
function squareModel(): Uint8Array {
  const b = new GraphBuilder(["x", "y"]);
  b.node("Mul", ["x", "x"], { outputs: ["y"] });
  return encodeModel(makeModel({
    inputs: [makeValueInfo("x", { dims: ["N", 4] })],
    outputs: [makeValueInfo("y", { dims: ["N", 4] })],
    nodes: b.nodes,
  }));
}

Deno.test("WebGPU IO binding: outputs stay on the GPU and feed the next run without a download", async () => {
  const x = tensor(Float32Array.from([1, 2, 3, -4, 0.5, -0.25, 1.5, 0]), [2, 4]);
  const expected = x.data.map((v) => v ** 4);
  // Elsewhere gpuOutputs is ignored: the same code gets CPU tensors.
  const wasm = await createSession(squareModel(), await chooseBackend("wasm"), {
    gpuOutputs: ["y"],
  });
  const cpu = (await wasm.run({ x: (await wasm.run({ x })).y })).y;
  assert.equal(cpu.location, "cpu");
  assert.deepEqual([...cpu.data], [...expected]);
  await wasm.release();
  if (!await hasWebGpu()) {
    console.warn("skipped: no WebGPU adapter (install mesa-vulkan-drivers for llvmpipe)");
    return;
  }
  const session = await createSession(squareModel(), await chooseBackend("webgpu"), {
    gpuOutputs: ["y"],
  });
  try {
    const y = (await session.run({ x })).y;
    assert.equal(y.location, "gpu");
    assert.equal(y.data.length, 0);
    assert.deepEqual(y.dims, [2, 4]);
    let downloads = 0;
    const gpu = y.gpu!;
    const counted = { ...y, gpu: { ...gpu, download: () => (downloads++, gpu.download()) } };
    const z = (await session.run({ x: counted })).y;
    assert.equal(downloads, 0, "the GPU feed was downloaded instead of bound");
    assert.equal(z.location, "gpu");
    assert.deepEqual([...(await toCpu(z)).data], [...expected]);
    gpu.dispose();
    z.gpu!.dispose();
  } finally {
    await session.release();
  }
});
