/**
 * The `heatmap` render: one coloured PNG per image and explanation, blended over the photo.
 * Also the helpers the other renders share (explanation selection, file keys).
 *
 * @module
 */
import { z } from "zod";
import {
  applyColormap,
  COLORMAP_NAMES,
  type ColormapName,
  DIVERGING_COLORMAP,
} from "../../kernels/colormap.ts";
import {
  CHANNEL_REDUCTIONS,
  defaultReduction,
  NORMALIZATIONS,
  normalizeValues,
  reduceChannels,
} from "../../kernels/normalize.ts";
import { encodePng } from "../../kernels/png_encode.ts";
import { batchItem, type Tensor, tensor, toCpu } from "../../kernels/tensor.ts";
import { upsampleBilinear } from "../../kernels/upsample.ts";
import { didYouMean, ParamError } from "../../pipeline/errors.ts";
import { defineRender } from "../../pipeline/plugin.ts";
import type { Batch, Explanation, OutputFile, RgbaImage } from "../../pipeline/types.ts";

/**
 * A file-name key per explanation: its method name, with `_2`, `_3`, … appended to later
 * explanations of the same method (e.g. one method at two layers), so files never collide.
 */
export function explanationKeys(explanations: readonly Explanation[]): string[] {
  const seen = new Map<string, number>();
  return explanations.map((e) => {
    const n = (seen.get(e.method) ?? 0) + 1;
    seen.set(e.method, n);
    return n === 1 ? e.method : `${e.method}_${n}`;
  });
}

/** An explanation chosen by a render, with its file-name key. */
export interface Selected {
  /** The explanation. */
  readonly explanation: Explanation;
  /** From {@linkcode explanationKeys}. */
  readonly key: string;
}

/** Options of {@linkcode selectExplanations}. */
export interface SelectOptions {
  /** Method names the user asked for (the render's `methods` parameter), or all when absent. */
  readonly methods?: readonly string[];
  /**
   * Why the render cannot draw this explanation, or `undefined` when it can. Unfit explanations
   * are skipped when `methods` is absent and an error when it names them.
   */
  readonly unfit?: (e: Explanation) => string | undefined;
}

/**
 * The explanations a render should draw, in pipeline order. Throws a {@linkcode ParamError} on
 * `methods` when it names a method that did not run or one the render cannot draw.
 */
export function selectExplanations(
  explanations: readonly Explanation[],
  options: SelectOptions = {},
): Selected[] {
  const keys = explanationKeys(explanations);
  const { methods, unfit } = options;
  if (methods) {
    const ran = new Set(explanations.map((e) => e.method));
    for (const m of methods) {
      if (!ran.has(m)) {
        throw new ParamError(
          "methods",
          `Cannot render method "${m}": it is not in the pipeline's methods (${
            [...ran].join(", ") || "none"
          })${didYouMean(m, ran)}`,
        );
      }
    }
  }
  const out: Selected[] = [];
  explanations.forEach((explanation, i) => {
    if (methods && !methods.includes(explanation.method)) return;
    const why = unfit?.(explanation);
    if (why !== undefined) {
      if (methods) throw new ParamError("methods", why);
      return;
    }
    out.push({ explanation, key: keys[i] });
  });
  return out;
}

/** Height and width of the pictures of a batch: its images', else the input tensor's. */
export function imageSize(batch: Batch, index: number): [number, number] {
  const img = batch.images?.[index];
  if (img) return [img.height, img.width];
  const d = batch.tensor.dims;
  if (d.length !== 4) {
    throw new Error(`Cannot size heatmap: batch tensor has dims [${d}], expected [N,C,H,W]`);
  }
  return batch.tensor.layout === "NHWC" ? [d[1], d[2]] : [d[2], d[3]];
}

/** `[N,h,w]` maps as `[N,1,h,w]`; other shapes unchanged. */
export function asNCHW(map: Tensor): Tensor {
  return map.dims.length === 3
    ? tensor(map.data, [map.dims[0], 1, map.dims[1], map.dims[2]], "NCHW")
    : map;
}

/**
 * Blend a colour layer over a photo: `round((1 - alpha) * photo + alpha * colour)` per RGB
 * channel, alpha 255. Transparent colour pixels (NaN in the map) leave the photo as it is.
 */
export function blend(photo: RgbaImage, colour: Uint8ClampedArray, alpha: number): RgbaImage {
  const out = new Uint8ClampedArray(photo.width * photo.height * 4);
  const p = photo.data;
  for (let i = 0; i < out.length; i += 4) {
    const a = colour[i + 3] ? alpha : 0;
    out[i] = Math.round((1 - a) * p[i] + a * colour[i]);
    out[i + 1] = Math.round((1 - a) * p[i + 1] + a * colour[i + 1]);
    out[i + 2] = Math.round((1 - a) * p[i + 2] + a * colour[i + 2]);
    out[i + 3] = 255;
  }
  return { width: photo.width, height: photo.height, data: out };
}

/** `img` resized bilinearly to `[h, w]` (unchanged when it already has that size). */
function enlarge(img: RgbaImage, [h, w]: [number, number]): RgbaImage {
  if (img.height === h && img.width === w) return img;
  const planes = new Float32Array(4 * img.height * img.width);
  const n = img.height * img.width;
  for (let p = 0; p < n; p++) for (let c = 0; c < 4; c++) planes[c * n + p] = img.data[p * 4 + c];
  const up = upsampleBilinear(tensor(planes, [1, 4, img.height, img.width]), [h, w]).data;
  const data = new Uint8ClampedArray(h * w * 4);
  for (let p = 0; p < h * w; p++) for (let c = 0; c < 4; c++) data[p * 4 + c] = up[c * h * w + p];
  return { width: w, height: h, data };
}

/** One row of an explanation's map: which image it belongs to and its file stem. */
export interface MapRow {
  /** Row of the map's batch axis. */
  readonly row: number;
  /** Batch index of the image. */
  readonly image: number;
  /** `<name>`, or `<name>_c<target>` when an image has several targets. */
  readonly stem: string;
}

/**
 * The rows of an explanation's map with their images: row i is image i, unless the method
 * explained several targets per image (`explanation.images`), in which case each file stem gets
 * the class as a `_c<target>` suffix. Throws when the rows do not fit the batch.
 */
export function mapRows(e: Explanation, batch: Batch): MapRow[] {
  const rows = e.map.dims[0];
  const images = e.images ?? Array.from({ length: rows }, (_, i) => i);
  if (images.length !== rows || images.some((img) => img >= batch.names.length)) {
    throw new Error(
      `Cannot render "${e.method}": its map has dims [${e.map.dims}], expected a batch of ${batch.names.length}`,
    );
  }
  return images.map((image, row) => ({
    row,
    image,
    stem: e.images ? `${batch.names[image]}_c${e.targets[row]}` : batch.names[image],
  }));
}

function heatmapUnfit(e: Explanation): string | undefined {
  const d = e.map.dims;
  if (d.length === 3) return undefined;
  if (d.length !== 4) {
    return `Cannot render "${e.method}" as a heatmap: its map has dims [${d}], expected [N,C,H,W]`;
  }
  if (e.space === "layer" && d[1] !== 1) {
    return `Cannot render "${e.method}" as a heatmap: its layer map [${d}] has ${
      d[1]
    } channels, expected 1 (use the grid render for feature maps)`;
  }
  return undefined;
}

/** Parameters of the `heatmap` render. */
export const heatmapParams = z.object({
  /** Colormap (default `jet`, or the diverging `RdBu_r` with `normalize: signed`). */
  colormap: z.enum(COLORMAP_NAMES).optional(),
  /** How each image's map is scaled to [0, 1] (see kernels/normalize.ts). */
  normalize: z.enum(NORMALIZATIONS).default("minmax"),
  /** Channel reduction of input-space maps (default `sum` when signed, else `abs-sum`). */
  reduce: z.enum(CHANNEL_REDUCTIONS).optional(),
  /** Opacity of the colour layer over the photo. */
  alpha: z.number().min(0).max(1).default(0.5),
  /** Blend over the photo (default: when the batch has images). */
  overlay: z.boolean().optional(),
  /** Smallest side of the output picture in pixels; smaller images are enlarged (bilinear). */
  size: z.number().int().positive().optional(),
  /** Methods to render (default: every explanation with a one-channel or input-space map). */
  methods: z.array(z.string().min(1)).min(1).optional(),
}).strict();

/** Parsed parameters of the `heatmap` render. */
export type HeatmapParams = z.infer<typeof heatmapParams>;

/**
 * Draws `<name>_<method>.png` per image and explanation: input-space maps are reduced over
 * channels, layer maps are upsampled bilinearly to the image, each image's map is normalized on
 * its own, coloured, and blended over the photo as `(1 - alpha) * photo + alpha * colour`.
 */
export const heatmapRender = defineRender({
  name: "heatmap",
  description: "Colour each one-channel map and blend it over its image (PNG per image)",
  params: heatmapParams,
  async run({ batch, explanations }, params) {
    const overlay = params.overlay ?? batch.images !== undefined;
    if (overlay && !batch.images) {
      throw new ParamError(
        "overlay",
        "Cannot overlay heatmap: the batch has no images, expected overlay: false",
      );
    }
    const colormap: ColormapName = params.colormap ??
      (params.normalize === "signed" ? DIVERGING_COLORMAP : "jet");
    const reduce = params.reduce ?? defaultReduction(params.normalize);
    const files: OutputFile[] = [];
    const selected = selectExplanations(explanations, {
      methods: params.methods,
      unfit: heatmapUnfit,
    });
    for (const { explanation, key } of selected) {
      let map = asNCHW(await toCpu(explanation.map));
      if (map.dims[1] !== 1) map = reduceChannels(map, reduce);
      for (const { row, image: i, stem } of mapRows(explanation, batch)) {
        const [ih, iw] = imageSize(batch, i);
        // Small model inputs (e.g. 64×64 faces) are enlarged for display when `size` asks.
        const zoom = params.size ? Math.max(1, params.size / Math.min(ih, iw)) : 1;
        const [h, w] = [Math.round(ih * zoom), Math.round(iw * zoom)];
        let item = batchItem(map, row);
        if (item.dims[2] !== h || item.dims[3] !== w) item = upsampleBilinear(item, [h, w]);
        const colour = applyColormap(normalizeValues(item.data, params.normalize), colormap);
        const img = overlay
          ? blend(enlarge(batch.images![i], [h, w]), colour, params.alpha)
          : { width: w, height: h, data: colour };
        files.push({ path: `${stem}_${key}.png`, bytes: encodePng(img) });
      }
    }
    return files;
  },
});
