/**
 * Registers every built-in plugin. Import this module once before running pipelines.
 *
 * Methods: `plugins/method/<name>.ts`; renders: `plugins/render/`; preprocess:
 * `plugins/preprocess/`; models: `plugins/model/`.
 *
 * @module
 */
import { registerPlugin } from "../pipeline/registry.ts";
import type { AnyPlugin } from "../pipeline/plugin.ts";
import { imagePreprocess } from "./preprocess/image.ts";
import { npyPreprocess } from "./preprocess/npy.ts";
import { onnxModel } from "./model/onnx.ts";
import { cam } from "./method/cam.ts";
import { featureMaps } from "./method/feature_maps.ts";
import { occlusion } from "./method/occlusion.ts";
import { saliency } from "./method/saliency.ts";
import { smoothgrad } from "./method/smoothgrad.ts";
import { integratedGradients } from "./method/integrated_gradients.ts";
import { guidedBackprop } from "./method/guided_backprop.ts";
import { deconvnet } from "./method/deconvnet.ts";
import { gradcam } from "./method/gradcam.ts";
import { guidedGradcam } from "./method/guided_gradcam.ts";
import { gradcamPlusPlus } from "./method/gradcam_plus_plus.ts";
import { heatmapRender } from "./render/heatmap.ts";
import { gridRender } from "./render/grid.ts";
import { npyRender } from "./render/npy.ts";
import { jsonRender } from "./render/json.ts";
import { activationMax } from "./method/activation_max.ts";
import { imageRender } from "./render/image.ts";
import { lime } from "./method/lime.ts";
import { rise } from "./method/rise.ts";
import { scoreCam } from "./method/score_cam.ts";
import { superpixelsRender } from "./render/superpixels.ts";

/** Every built-in plugin, in pipeline order. */
export const BUILTIN_PLUGINS: readonly AnyPlugin[] = [
  imagePreprocess,
  npyPreprocess,
  onnxModel,
  featureMaps,
  cam,
  occlusion,
  saliency,
  smoothgrad,
  integratedGradients,
  guidedBackprop,
  deconvnet,
  gradcam,
  guidedGradcam,
  gradcamPlusPlus,
  heatmapRender,
  gridRender,
  npyRender,
  jsonRender,
  activationMax,
  imageRender,
  lime,
  rise,
  scoreCam,
  superpixelsRender,
] as AnyPlugin[];

for (const plugin of BUILTIN_PLUGINS) registerPlugin(plugin);
