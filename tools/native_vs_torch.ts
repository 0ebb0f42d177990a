/**
 * Native onnxruntime (and WASM) against PyTorch eager on the same cores: forward, forward+backward
 * and Grad-CAM on MobileNetV2 and ResNet-50 at 224×224, batch 1 (and 16 with `--b16`).
 *
 *   deno run -A tools/native_vs_torch.ts [--reps 10] [--threads N] [--b16] [--wasm] [--only resnet50]
 *
 * Lantern and PyTorch repetitions alternate, so load on a shared machine hits both alike; the min
 * is the least disturbed run. PyTorch is `bench/torch_bench.py serve` with as many intra-op
 * threads as Lantern gets (`--threads`, else `navigator.hardwareConcurrency`). The first results
 * of both sides are compared (max |L − T| / max |T|), so a fast wrong answer shows.
 *
 * @module
 */
import "../plugins/mod.ts";
import { exportResnet50 } from "../bench/cases.ts";
import { CLASSES, median, MOBILENET, OUT, relDiff, RESNET50 } from "../bench/common.ts";
import { TorchWorker } from "../bench/torch_worker.ts";
import { type BackendRequest, hardwareThreads } from "../kernels/backend.ts";
import { decodeNpy } from "../kernels/npy.ts";
import { type Tensor, toCpu } from "../kernels/tensor.ts";
import { inputGradients, rows } from "../pipeline/gradients.ts";
import { getPlugin } from "../pipeline/registry.ts";
import type { MethodPlugin } from "../pipeline/plugin.ts";
import { openModel } from "../plugins/model/onnx_model.ts";

const args = Deno.args;
const reps = Number(args[args.indexOf("--reps") + 1]) || 10;
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : "";
const batches = args.includes("--b16") ? [1, 16] : [1];
const engines: BackendRequest[] = args.includes("--wasm") ? ["native", "wasm"] : ["native"];
if (args.includes("--threads")) {
  Deno.env.set("LANTERN_THREADS", args[args.indexOf("--threads") + 1]);
}
const threads = hardwareThreads();

const torch = new TorchWorker(threads);
console.log("torch", JSON.stringify(await torch.start()), `lantern threads ${threads}`);
Deno.mkdirSync(OUT, { recursive: true });
if (!only || "resnet50".includes(only)) await exportResnet50();

const gradcam = getPlugin("method", "gradcam") as MethodPlugin<unknown>;
const lines: string[] = [];
for (const [name, path] of [["mobilenet_v2", MOBILENET], ["resnet50", RESNET50]] as const) {
  if (only && !name.includes(only)) continue;
  const inputPath = `${OUT}/native_vs_torch_${name}_input.npy`;
  const { targets } = await torch.request({
    op: "load",
    model: name,
    onnx: path,
    input: inputPath,
  }) as { targets: number[] };
  const all = decodeNpy(Deno.readFileSync(inputPath));
  const bytes = Deno.readFileSync(path);
  const models = await Promise.all(engines.map((backend) => openModel(bytes, { name, backend })));
  for (const batch of batches) {
    const x = rows(all, 0, batch);
    const t = targets.slice(0, batch);
    // Grad-CAM gets the logits precomputed, as the pipeline runner hands them to every method.
    const logits = new Map<string, Tensor>();
    for (const m of models) logits.set(m.backend.name, (await m.run(x))[m.outputName]);
    const cases: Record<string, (m: (typeof models)[number]) => Promise<Tensor>> = {
      forward: async (m) => (await m.run(x))[m.outputName],
      grad: async (m) => (await inputGradients(m, x, { targets: t, classes: CLASSES })).grad,
      gradcam: async (m) => {
        const names = t.map((_, i) => `img${i}`);
        const e = await gradcam.run(
          { model: m, batch: { tensor: x, names }, logits: logits.get(m.backend.name)! },
          gradcam.params.parse({ target: t }),
        );
        return toCpu(e.map);
      },
    };
    for (const [kind, run] of Object.entries(cases)) {
      if (kind === "gradcam" && batch > 1) continue;
      const save = `${OUT}/native_vs_torch_${name}_${kind}_b${batch}.npy`;
      const times: Record<string, number[]> = { torch: [] };
      const first: Record<string, Tensor> = {};
      for (let r = -2; r < reps; r++) {
        for (const m of models) {
          const t0 = performance.now();
          const out = await run(m);
          const ms = performance.now() - t0;
          if (r === -2) first[m.backend.name] = out;
          if (r >= 0) (times[m.backend.name] ??= []).push(ms);
        }
        const reply = await torch.request({
          op: "run",
          model: name,
          case: kind,
          batch,
          target: t,
          save: r === -2 ? save : undefined,
        }) as { ms: number };
        if (r >= 0) times.torch.push(reply.ms);
      }
      const reference = decodeNpy(Deno.readFileSync(save));
      const cells = Object.entries(times).map(([side, ts]) => {
        const diff = first[side]
          ? ` (diff ${relDiff(first[side].data, reference.data).max.toExponential(1)})`
          : "";
        return `${side} median ${median(ts).toFixed(1)} min ${Math.min(...ts).toFixed(1)}${diff}`;
      });
      const ratio = median(times.native) / median(times.torch);
      const ratioMin = Math.min(...times.native) / Math.min(...times.torch);
      const line = `${name} ${kind} b${batch}: ${cells.join(" | ")} | native/torch median ${
        ratio.toFixed(2)
      } min ${ratioMin.toFixed(2)}`;
      console.log(line);
      lines.push(line);
    }
  }
  for (const m of models) await m.dispose();
}
await torch.close();
console.log(`\n${lines.join("\n")}`);
