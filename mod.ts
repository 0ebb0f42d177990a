/**
 * Lantern: explain what convolutional networks see and why they decide.
 *
 * ```ts
 * import { openModel, runPipeline } from "./mod.ts";
 * const result = await runPipeline(await Deno.readTextFile("examples/demo.yaml"), {
 *   baseDir: "examples",
 * });
 * console.log(result.explanations.map((e) => [e.method, e.map.dims]));
 * ```
 *
 * @module
 */
import "./plugins/mod.ts";
import { PipelineSource } from "./pipeline/config.ts";
import {
  type PipelineResult,
  type RunPipelineOptions,
  runPipelineSource,
} from "./pipeline/runner.ts";

export type {
  BackendInfo,
  Batch,
  Explanation,
  Model,
  OutputFile,
  Prediction,
  RgbaImage,
  RunOptions,
  TensorInfo,
} from "./pipeline/types.ts";
export type {
  AnyPlugin,
  MethodInput,
  MethodPlugin,
  ModelInput,
  ModelPlugin,
  Plugin,
  PluginKind,
  PreprocessInput,
  PreprocessPlugin,
  ProgressFn,
  RenderInput,
  RenderPlugin,
} from "./pipeline/plugin.ts";
export { defineMethod, defineModel, definePreprocess, defineRender } from "./pipeline/plugin.ts";
export { getPlugin, importPlugin, pluginNames, registerPlugin } from "./pipeline/registry.ts";
export { LanternError, ParamError } from "./pipeline/errors.ts";
export {
  isOnePerImage,
  resolveTargetRows,
  resolveTargets,
  type Target,
  targetParam,
  type TargetRows,
  topPredictions,
} from "./pipeline/targets.ts";
export { explanation, type ExplanationParts } from "./pipeline/explanation.ts";
export {
  type GradientRequest,
  type GradientResult,
  gradients,
  inputGradients,
  inputGradientsMany,
  oneHot,
} from "./pipeline/gradients.ts";
export type { ReluRule } from "./graph/autodiff.ts";
export { buildGradientGraph, type GradientGraph, type GradientSpec } from "./graph/autodiff.ts";
export { upsampleBilinear, upsampleNearest } from "./kernels/upsample.ts";
export { Random } from "./kernels/random.ts";
export { defaultLayer, resolveLayer } from "./pipeline/layers.ts";
export { forwardMany, zeroBatch } from "./pipeline/batching.ts";
export type { PipelineResult, RunPipelineOptions } from "./pipeline/runner.ts";
export {
  batchItem,
  concatBatch,
  type GpuData,
  type Layout,
  sizeOf,
  type Tensor,
  tensor,
  toCpu,
  valueRange,
  zeros,
} from "./kernels/tensor.ts";
export { decodeNpy, encodeNpy } from "./kernels/npy.ts";
export { openModel, type OpenModelOptions } from "./plugins/model/onnx_model.ts";
export { type BackendRequest, chooseBackend } from "./kernels/backend.ts";

/**
 * Run a pipeline given as YAML text (or a plain object). Relative paths resolve against
 * `options.baseDir`. Files are returned in `result.files`, not written.
 */
export function runPipeline(
  config: string | Record<string, unknown>,
  options: RunPipelineOptions & { file?: string } = {},
): Promise<PipelineResult> {
  const source = typeof config === "string"
    ? new PipelineSource(config, options.file ?? "pipeline.yaml")
    : new PipelineSource(JSON.stringify(config), options.file ?? "pipeline");
  return runPipelineSource(source, options);
}
