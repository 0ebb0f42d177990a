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
import { type ExplainInput, tensorBatch, toSource } from "./pipeline/explain.ts";
import type { Tensor } from "./kernels/tensor.ts";

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
export {
  type Curve,
  type CurveOptions,
  deletionAuc,
  deletionCurve,
  insertionAuc,
  insertionCurve,
  type MetricFill,
  randomOrder,
  randomSegmentOrder,
  saliencyOrder,
} from "./pipeline/metrics.ts";
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

// The method-authoring kit: with the exports above, everything the built-in methods use
// (tests/kit_test.ts checks that), so a plugin needs no other import.
export { z } from "zod";
export { since } from "./pipeline/explanation.ts";
export {
  outputParam,
  rowsOfImage,
  scoreOf,
  type ScoreOutput,
  softmaxOf,
  softmaxRows,
} from "./pipeline/targets.ts";
export { modelProto } from "./pipeline/layers.ts";
export { type GradientHookModel, hasGradientHook } from "./pipeline/gradients.ts";
export { gatherBatch } from "./kernels/tensor.ts";
export {
  bilinearPlane,
  bilinearSeparable,
  type PlaneOptions,
  type Taps,
} from "./kernels/upsample.ts";
export {
  internalBatchParam,
  targetInputGradients,
  targetLayerGradients,
} from "./plugins/method/_gradient.ts";
export {
  camVariantParams,
  type CamWeights,
  defineCamMethod,
  spatialMean,
  weightedSum,
} from "./plugins/method/_cam.ts";
export { findHead, type HeadResult } from "./graph/head.ts";
export {
  CHANNEL_REDUCTIONS,
  type ChannelReduction,
  type Normalization,
  NORMALIZATIONS,
  normalizeBatch,
  normalizeValues,
  reduceChannels,
} from "./kernels/normalize.ts";
export { gaussianBlur } from "./kernels/blur.ts";
export { quadrature, type Rule, RULES } from "./kernels/quadrature.ts";
export { Adam, type AdamOptions } from "./kernels/adam.ts";
export { type ImageParameterization, imageParameterization } from "./kernels/fourier_image.ts";
export {
  type Affine,
  IDENTITY,
  randomAffine,
  sampleAffine,
  sampleAffineAdjoint,
} from "./kernels/transforms.ts";
export { quickshift, type RgbImage, type Segmentation } from "./kernels/quickshift.ts";
export { slic } from "./kernels/slic.ts";
export {
  type Design,
  FEATURE_SELECTIONS,
  type FeatureSelection,
  selectFeatures,
  weightedRidge,
} from "./kernels/ridge.ts";
export { PluginLoader, type PluginModuleSpec } from "./pipeline/registry.ts";
export { type MethodFailure } from "./pipeline/runner.ts";
export {
  explain,
  ExplainError,
  type ExplainErrorKind,
  type ExplainInput,
  type ExplainOptions,
  type ExplainResult,
  loadModel,
  type LoadModelOptions,
  type PngOptions,
} from "./pipeline/explain.ts";

/** An input handed to {@linkcode runPipeline} directly: bytes, a `Blob`/`File`, or a path. */
export type PipelineInput = Exclude<ExplainInput, Tensor>;

/** Options of {@linkcode runPipeline}. */
export interface PipelineOptions extends Omit<RunPipelineOptions, "inputs"> {
  /** File name used in error messages (`pipeline.yaml`). */
  file?: string;
  /**
   * The inputs, instead of the pipeline's `inputs` files: encoded images (or `.npy`) as bytes,
   * `Blob`s or paths, or one preprocessed `[N,C,H,W]` tensor (no preprocess stage then).
   */
  inputs?: readonly PipelineInput[] | Tensor;
}

/**
 * Run a pipeline given as YAML text (or a plain object). Relative paths resolve against
 * `options.baseDir`. Files are returned in `result.files`, not written.
 *
 * ```ts
 * const png = new Uint8Array(await (await fetch(url)).arrayBuffer());
 * const { explanations, files } = await runPipeline(
 *   { model: { path: "model.onnx" }, methods: [{ name: "gradcam" }], render: [{ name: "heatmap" }] },
 *   { inputs: [png] },
 * );
 * ```
 */
export async function runPipeline(
  config: string | Record<string, unknown>,
  options: PipelineOptions = {},
): Promise<PipelineResult> {
  const { file, inputs, ...rest } = options;
  const source = typeof config === "string"
    ? new PipelineSource(config, file ?? "pipeline.yaml")
    : new PipelineSource(JSON.stringify(config), file ?? "pipeline");
  if (inputs === undefined) return await runPipelineSource(source, rest);
  if (!Array.isArray(inputs)) {
    const batch = tensorBatch(inputs as Tensor);
    return await runPipelineSource(source, { ...rest, makeBatch: () => batch });
  }
  const list = inputs as readonly PipelineInput[];
  const sources = await Promise.all(list.map(async (input, i) => {
    if (typeof input === "string") return input;
    const named = await toSource(input, undefined);
    // Unnamed bytes get distinct names, so their output files do not collide.
    return named.name === "input" && list.length > 1 ? { ...named, name: `input${i}` } : named;
  }));
  return await runPipelineSource(source, { ...rest, inputs: sources });
}
