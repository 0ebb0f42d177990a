/**
 * The `lantern` command line: `run`, `explain`, `layers`, `methods`, `doctor`.
 *
 * Every failure prints one line (`error: …`) and exits with status 1; files are written only when
 * the whole command succeeded.
 *
 * @module
 */
import { Command } from "commander";
import "../plugins/mod.ts";
import { PipelineSource } from "../pipeline/config.ts";
import { firstLine, LanternError } from "../pipeline/errors.ts";
import { dirname, writeOutputs } from "../pipeline/paths.ts";
import type { ProgressFn } from "../pipeline/plugin.ts";
import { pluginsOf } from "../pipeline/registry.ts";
import { runPipelineSource } from "../pipeline/runner.ts";
import { explain } from "./explain.ts";
import { doctor, formatDoctor } from "./doctor.ts";
import { BACKEND_REQUESTS, type BackendRequest } from "../kernels/backend.ts";

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function progressBar(): ProgressFn | undefined {
  if (!Deno.stderr.isTerminal()) return undefined;
  let last = 0;
  return (done, total, label) => {
    const now = performance.now();
    if (done < total && now - last < 100) return;
    last = now;
    const pct = Math.floor((100 * done) / total);
    const line = `\r${label ?? "working"} ${done}/${total} (${pct}%)`;
    Deno.stderr.writeSync(new TextEncoder().encode(done >= total ? line + "\n" : line));
  };
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new LanternError(`Cannot read pipeline "${path}": file not found`);
    }
    throw new LanternError(`Cannot read pipeline "${path}": ${(e as Error).message}`);
  }
}

function summarize(written: string[]): void {
  console.log(`wrote ${written.length} file${written.length === 1 ? "" : "s"}:`);
  for (const f of written) console.log(`  ${f}`);
}

/** Build the command tree (exported for tests). */
export function buildCli(): Command {
  const program = new Command("lantern")
    .description("Explain what convolutional networks see and why they decide")
    .exitOverride()
    .configureOutput({ writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)) });

  program.command("run")
    .description("Run a YAML pipeline")
    .argument("<pipeline>", "pipeline YAML file")
    .option("--set <key=value>", "override a value, e.g. methods[0].target=281", collect, [])
    .option("--out <dir>", "output directory (overrides out:)")
    .option(
      "--watch",
      "re-run when the pipeline or a local plugin file changes (model kept loaded)",
    )
    .action(async (file: string, opts: { set: string[]; out?: string; watch?: boolean }) => {
      if (opts.watch) {
        await readText(file);
        const { watchPipeline } = await import("./watch.ts");
        return await watchPipeline(file, { set: opts.set, out: opts.out, progress: progressBar() });
      }
      const source = new PipelineSource(await readText(file), file);
      for (const s of opts.set) source.set(s);
      const result = await runPipelineSource(source, {
        baseDir: dirname(file),
        progress: progressBar(),
      });
      summarize(await writeOutputs(opts.out ?? result.out, result.files));
      // A sandboxed method's failure does not stop the others; their files are written above.
      for (const f of result.failures.slice(0, -1)) console.error(`error: ${f.message}`);
      if (result.failures.length) throw new LanternError(result.failures.at(-1)!.message);
    });

  program.command("new")
    .description("Scaffold a plugin: DIR/NAME.ts, its test DIR/NAME_test.ts and DIR/NAME.yaml")
    .argument("<kind>", "plugin kind (method)")
    .argument("<name>", "plugin name, e.g. my-method")
    .option("--dir <dir>", "directory to write to", ".")
    .action(async (kind: string, name: string, opts: { dir: string }) => {
      const { scaffold } = await import("./new.ts");
      const written = await scaffold(kind, name, { dir: opts.dir });
      summarize(written);
    });

  program.command("explain")
    .description("Explain inputs with one method; writes DIR/<stem>_<method>.npy and .png")
    .requiredOption("--model <path>", "ONNX model path or https URL")
    .option("--input <path>", "input image, .npy or glob (repeatable)", collect, [])
    .requiredOption("--method <name>", "method name (see `lantern methods`)")
    .option("--layer <tensor>", "ONNX tensor name the method looks at")
    .option("--target <k>", "class index, top1, or a comma list with one per image")
    .option("--param <key=value>", "method parameter (repeatable)", collect, [])
    .option("--backend <name>", BACKEND_REQUESTS.join(" | "))
    .option("--labels <file>", "labels file, one class per line")
    .option("--preset <name>", "preprocess preset: imagenet | grayscale | none")
    .requiredOption("--out <dir>", "output directory")
    .action(async (opts) => {
      const result = await explain(opts, progressBar());
      summarize(await writeOutputs(opts.out, result.files));
    });

  program.command("layers")
    .description("List every tensor of a model: name, producing op, shape")
    .argument("<model>", "ONNX model path")
    .option("--json", "print JSON")
    .option("--backend <name>", BACKEND_REQUESTS.join(" | "), "wasm")
    .action(async (path: string, opts: { json?: boolean; backend: BackendRequest }) => {
      const { onnxModel } = await import("../plugins/model/onnx.ts");
      const model = await onnxModel.run({ baseDir: "." }, { path, backend: opts.backend });
      const tensors = await model.tensors();
      await model.dispose();
      if (opts.json) console.log(JSON.stringify(tensors, null, 2));
      else {
        const width = Math.max(4, ...tensors.map((t) => t.name.length));
        const opWidth = Math.max(2, ...tensors.map((t) => t.op.length));
        console.log(`${"name".padEnd(width)}  ${"op".padEnd(opWidth)}  shape`);
        for (const t of tensors) {
          console.log(`${t.name.padEnd(width)}  ${t.op.padEnd(opWidth)}  [${t.shape.join(", ")}]`);
        }
      }
    });

  program.command("methods")
    .description("List the explanation methods and their parameters")
    .option("--json", "print JSON")
    .action((opts: { json?: boolean }) => {
      const methods = pluginsOf("method").map((p) => ({
        name: p.name,
        description: p.description,
        params: Object.keys((p.params as { shape?: Record<string, unknown> }).shape ?? {}),
      }));
      if (opts.json) console.log(JSON.stringify(methods, null, 2));
      else {for (const m of methods) {
          console.log(
            `${m.name.padEnd(22)} ${m.description}\n${"".padEnd(23)}params: ${m.params.join(", ")}`,
          );
        }}
    });

  program.command("doctor")
    .description("Show the backend auto picks and why, SIMD, threads and the WebGPU adapter")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const report = await doctor();
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
    });

  program.command("serve")
    .description("Serve POST /v1/explain, GET /v1/models, /v1/methods, /healthz, /openapi.json")
    .option("--port <n>", "TCP port (0: any free one)", "8000")
    .option("--hostname <host>", "interface to listen on", "127.0.0.1")
    .option("--model <name=path>", "allow-listed model, NAME=PATH_OR_URL (repeatable)", collect, [])
    .option("--config <file>", "server config YAML (models, default_model, limits, log)")
    .option("--backend <name>", `${BACKEND_REQUESTS.join(" | ")}, for --model entries`)
    .option("--quiet", "no request logs")
    .action(async (opts) => {
      const { serve } = await import("./serve.ts");
      await (await serve(opts)).finished;
    });
  return program;
}

/** Run the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code?.startsWith("commander.")) {
      return err.code === "commander.helpDisplayed" || err.code === "commander.version"
        ? 0
        : err.exitCode ?? 2;
    }
    const message = firstLine(e).replace(/^Error: /, "");
    console.error(`error: ${message}`);
    if (Deno.env.get("LANTERN_DEBUG")) console.error(e);
    return 1;
  }
}

if (import.meta.main) {
  // Mesa's Vulkan loader prints "error: XDG_RUNTIME_DIR is invalid" on every WebGPU probe when
  // the variable is unset (CI, containers); give it a private directory so stderr stays ours.
  let xdg: string | undefined;
  if (Deno.build.os === "linux" && !Deno.env.get("XDG_RUNTIME_DIR")) {
    try {
      xdg = Deno.makeTempDirSync({ prefix: "lantern-xdg-" });
      Deno.env.set("XDG_RUNTIME_DIR", xdg);
    } catch { /* no env or write permission: the driver only complains */ }
  }
  const code = await main(Deno.args);
  if (xdg) Deno.removeSync(xdg, { recursive: true });
  // onnxruntime-web keeps worker threads alive; exit explicitly.
  Deno.exit(code);
}
