/**
 * The `image` render: input-space maps (e.g. `activation-max`'s synthesized images) turned back
 * into pictures through the model's own normalization, as PNG. One `<stem>_<method>.png` per
 * row, or with `batch: true` one `<method>.png` tiling every row.
 *
 * @module
 */
import { z } from "zod";
import { encodePng } from "../../kernels/png_encode.ts";
import { type Tensor, toCpu } from "../../kernels/tensor.ts";
import { defineRender } from "../../pipeline/plugin.ts";
import type { Explanation, Model, OutputFile, RgbaImage } from "../../pipeline/types.ts";
import { modelNormalization } from "../preprocess/image.ts";
import { mapRows, selectExplanations } from "./heatmap.ts";

/** Parameters of the `image` render. */
export const imageRenderParams = z.object({
  /** One `<method>.png` tiling all rows instead of one file per row. */
  batch: z.boolean().default(false),
  /** Tiles per row of the tiled picture (default: `ceil(sqrt(rows))`). */
  columns: z.number().int().positive().optional(),
  /** Gap between and around tiles, in px (white). */
  padding: z.number().int().nonnegative().default(2),
  /** Methods to render (default: every input-space map with 3 channels). */
  methods: z.array(z.string().min(1)).min(1).optional(),
}).strict();

/** Row `row` of an input-space `[N,3,H,W]` map as an RGBA picture, undoing the normalization. */
export function inputToImage(map: Tensor, model: Model, options: { row: number }): RgbaImage {
  const { row } = options;
  const [, c, h, w] = map.dims;
  const { mean, std, gain } = modelNormalization(model);
  const hw = h * w;
  const data = new Uint8ClampedArray(hw * 4);
  const src = map.data.subarray(row * c * hw, (row + 1) * c * hw);
  for (let p = 0; p < hw; p++) {
    for (let k = 0; k < 3; k++) {
      const ch = c === 1 ? 0 : k;
      data[p * 4 + k] = Math.round(((src[ch * hw + p] * std[ch] + mean[ch]) / gain) * 255);
    }
    data[p * 4 + 3] = 255;
  }
  return { width: w, height: h, data };
}

/** Tile pictures of one size into a grid with white gaps. */
export function tileImages(
  images: readonly RgbaImage[],
  options: { columns?: number; padding?: number } = {},
): RgbaImage {
  const cols = options.columns ?? Math.ceil(Math.sqrt(images.length));
  const rows = Math.ceil(images.length / cols);
  const pad = options.padding ?? 2;
  const { width: w, height: h } = images[0];
  const width = cols * (w + pad) + pad, height = rows * (h + pad) + pad;
  const data = new Uint8ClampedArray(width * height * 4).fill(255);
  images.forEach((img, i) => {
    const x0 = pad + (i % cols) * (w + pad), y0 = pad + Math.floor(i / cols) * (h + pad);
    for (let y = 0; y < h; y++) {
      data.set(img.data.subarray(y * w * 4, (y + 1) * w * 4), ((y0 + y) * width + x0) * 4);
    }
  });
  return { width, height, data };
}

/** Writes input-space maps as pictures through the model's normalization. */
export const imageRender = defineRender({
  name: "image",
  description: "Write input-space maps (synthesized images) as PNG pictures",
  params: imageRenderParams,
  async run({ batch, explanations, model }, params) {
    const files: OutputFile[] = [];
    const unfit = (e: Explanation) => {
      const d = e.map.dims;
      if (e.space !== "input" || d.length !== 4 || (d[1] !== 3 && d[1] !== 1)) {
        return `Cannot render "${e.method}" as an image: its map [${d}] is not an input-space [N,3,H,W]`;
      }
      // Attribution maps share this space but are not pictures: by default draw only synthesized
      // images (their info carries the objective curve).
      if (!params.methods && e.info?.objective === undefined) return "not a synthesized image";
      return undefined;
    };
    for (const { explanation, key } of selectExplanations(explanations, { ...params, unfit })) {
      const map = await toCpu(explanation.map);
      if (params.batch) {
        const tiles = Array.from(
          { length: map.dims[0] },
          (_, r) => inputToImage(map, model, { row: r }),
        );
        const png = encodePng(tileImages(tiles, params));
        files.push({ path: `${key}.png`, bytes: png });
        continue;
      }
      for (const { row, stem } of mapRows(explanation, batch)) {
        files.push({
          path: `${stem}_${key}.png`,
          bytes: encodePng(inputToImage(map, model, { row })),
        });
      }
    }
    return files;
  },
});
