/**
 * `lantern explain`: a one-method pipeline built from flags. Writes `DIR/<stem>_<method>.npy` and
 * `DIR/<stem>_<method>.png` (a heatmap, or a feature-map grid for `feature-maps`). `activation-max`
 * synthesizes its images and needs no `--input`: it writes `DIR/activation-max.npy` `[N,3,H,W]`
 * and `DIR/activation-max.png` (all rows tiled).
 *
 * @module
 */
import { type KeyPath, parsePath, PipelineSource } from "../pipeline/config.ts";
import { LanternError } from "../pipeline/errors.ts";
import { runPipelineSource } from "../pipeline/runner.ts";
import type { MethodPlugin, ProgressFn } from "../pipeline/plugin.ts";
import { pluginsOf } from "../pipeline/registry.ts";
import { parse as parseYaml } from "yaml";

/** Flags of `lantern explain`. */
export interface ExplainFlags {
  model: string;
  input: string[];
  method: string;
  layer?: string;
  target?: string;
  param: string[];
  backend?: string;
  out: string;
  labels?: string;
  preset?: string;
}

const FLAG_OF: Record<string, string> = {
  inputs: "--input",
  "model.path": "--model",
  "model.backend": "--backend",
  "model.labels": "--labels",
  "methods[0].name": "--method",
  "methods[0].layer": "--layer",
  "methods[0].target": "--target",
  "preprocess.preset": "--preset",
};

function locate(path: KeyPath): string {
  const key = path.map((k) => typeof k === "number" ? `[${k}]` : `.${k}`).join("").slice(1)
    .replace(/\.\[/g, "[");
  for (const [prefix, flag] of Object.entries(FLAG_OF)) {
    if (key === prefix || key.startsWith(`${prefix}[`) || key.startsWith(`${prefix}.`)) {
      return flag;
    }
  }
  if (key.startsWith("methods[0].")) return `--param ${key.slice("methods[0].".length)}`;
  if (key.startsWith("model")) return "--model";
  if (key.startsWith("preprocess")) return "--preset";
  return `explain ${key || "options"}`;
}

/** Parse `key=value` with the value read as YAML (numbers, booleans, lists). */
export function parseParam(text: string): [string, unknown] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new LanternError(`Cannot parse --param "${text}": expected key=value`);
  const key = text.slice(0, eq).trim();
  parsePath(key);
  const raw = text.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = parseYaml(raw);
  } catch { /* keep the string */ }
  return [key, value ?? raw];
}

function parseTarget(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  if (text.includes(",")) return text.split(",").map((t) => /^\d+$/.test(t) ? Number(t) : t);
  return text;
}

/** Build the pipeline for `flags`, run it, and return the files to write. */
export async function explain(flags: ExplainFlags, progress?: ProgressFn) {
  const method: Record<string, unknown> = { name: flags.method };
  for (const p of flags.param) {
    const [k, v] = parseParam(p);
    method[k] = v;
  }
  if (flags.layer !== undefined) method.layer = flags.layer;
  if (flags.target !== undefined) method.target = parseTarget(flags.target);
  const model: Record<string, unknown> = { name: "onnx", path: flags.model };
  if (flags.backend) model.backend = flags.backend;
  if (flags.labels) model.labels = flags.labels;
  // Methods that synthesize their input need none: without `inputs` the runner feeds one zero
  // input of the model's shape, named after the method.
  const synthesizes = pluginsOf("method").some((p) =>
    p.name === flags.method && (p as MethodPlugin).synthesizesInput
  );
  if (flags.input.length === 0 && !synthesizes) {
    throw new LanternError("Cannot explain: no --input given (an image, .npy file or glob)");
  }
  const config: Record<string, unknown> = {
    inputs: flags.input.length ? flags.input : undefined,
    out: flags.out,
    model,
    methods: [method],
    render: synthesizes
      ? [{ name: "npy", batch: true }, { name: "image", batch: true }, {
        name: "json",
      }]
      : [
        { name: "npy" },
        // Each draws only what fits it: heatmaps for one-channel and input-space maps, grids for
        // multi-channel layer maps, so every method gets exactly one picture.
        { name: "heatmap" },
        { name: "grid" },
        { name: "json" },
      ],
  };
  if (flags.preset) config.preprocess = { name: "image", preset: flags.preset };
  const source = PipelineSource.fromObject(config, locate);
  const result = await runPipelineSource(source, { baseDir: ".", progress });
  // The contract names the picture `<stem>_<method>.png` whichever render drew it.
  const files = result.files.map((f) => ({ ...f, path: f.path.replace(/_grid\.png$/, ".png") }));
  return { ...result, files };
}
