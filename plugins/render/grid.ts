/**
 * The `grid` render: the channels of a feature map tiled into one PNG per image.
 *
 * @module
 */
import { z } from "zod";
import { applyColormap, COLORMAP_NAMES } from "../../kernels/colormap.ts";
import { normalizeMinMax } from "../../kernels/normalize.ts";
import { encodePng } from "../../kernels/png_encode.ts";
import { batchItem, type Tensor, tensor, toCpu } from "../../kernels/tensor.ts";
import { upsampleNearest } from "../../kernels/upsample.ts";
import { ParamError } from "../../pipeline/errors.ts";
import { defineRender } from "../../pipeline/plugin.ts";
import type { Explanation, OutputFile, RgbaImage } from "../../pipeline/types.ts";
import { asNCHW, mapRows, selectExplanations } from "./heatmap.ts";

/** Parameters of the `grid` render. */
export const gridParams = z.object({
  /** How many channels to show (the most active first), or which ones, by index. */
  channels: z.union([
    z.number().int().positive(),
    z.array(z.number().int().nonnegative()).min(1),
  ]).default(64),
  /** Tiles per row (default: `ceil(sqrt(count))`). */
  columns: z.number().int().positive().optional(),
  /**
   * Tile height in px; the width follows the map's aspect ratio (default: the map enlarged by the
   * smallest whole factor that makes its shorter side at least 64 px).
   */
  cell: z.number().int().positive().optional(),
  /** Gap between and around tiles, in px (white). */
  padding: z.number().int().nonnegative().default(2),
  /** Colormap. */
  colormap: z.enum(COLORMAP_NAMES).default("viridis"),
  /** Scale each channel to its own min–max, or all shown channels of an image to one. */
  normalize: z.enum(["per-channel", "global"]).default("per-channel"),
  /** Methods to render (default: every layer explanation with more than one channel). */
  methods: z.array(z.string().min(1)).min(1).optional(),
}).strict();

/** Parsed parameters of the `grid` render. */
export type GridParams = z.infer<typeof gridParams>;

/** Where the tiles of a grid go. */
export interface GridLayout {
  /** Tiles per row. */
  readonly columns: number;
  /** Rows of tiles. */
  readonly rows: number;
  /** Tile height, px. */
  readonly cellHeight: number;
  /** Tile width, px. */
  readonly cellWidth: number;
  /** Gap between and around tiles, px. */
  readonly padding: number;
  /** Picture width: `columns * cellWidth + (columns + 1) * padding`. */
  readonly width: number;
  /** Picture height: `rows * cellHeight + (rows + 1) * padding`. */
  readonly height: number;
}

/** Options of {@linkcode gridLayout}. */
export interface GridLayoutOptions {
  /** Tiles per row (default `ceil(sqrt(count))`, never more than `count`). */
  readonly columns?: number;
  /** Tile height in px (default: see {@linkcode gridParams}). */
  readonly cell?: number;
  /** Gap in px (default 2). */
  readonly padding?: number;
}

/** Lay out `count` tiles of `[h, w]` maps; tile `k` sits at row `floor(k / columns)`. */
export function gridLayout(
  count: number,
  mapSize: readonly [number, number],
  options: GridLayoutOptions = {},
): GridLayout {
  const [h, w] = mapSize;
  const columns = Math.min(options.columns ?? Math.ceil(Math.sqrt(count)), count);
  const rows = Math.ceil(count / columns);
  const padding = options.padding ?? 2;
  let cellHeight: number, cellWidth: number;
  if (options.cell !== undefined) {
    cellHeight = options.cell;
    cellWidth = Math.max(1, Math.round(options.cell * w / h));
  } else {
    // A whole factor keeps each activation a crisp square block.
    const factor = Math.max(1, Math.ceil(64 / Math.min(h, w)));
    cellHeight = h * factor;
    cellWidth = w * factor;
  }
  return {
    columns,
    rows,
    cellHeight,
    cellWidth,
    padding,
    width: columns * cellWidth + (columns + 1) * padding,
    height: rows * cellHeight + (rows + 1) * padding,
  };
}

/**
 * Indices of the `count` channels with the highest mean over one image's `[1,C,h,w]` map,
 * highest first (ties by index).
 */
export function topChannels(item: Tensor, count: number): number[] {
  const { data } = item;
  const channels = item.dims[1];
  const plane = data.length / channels;
  const means = Array.from({ length: channels }, (_, c) => {
    let s = 0;
    for (let i = c * plane; i < (c + 1) * plane; i++) s += data[i];
    return s / plane;
  });
  return means.map((_, c) => c).sort((a, b) => means[b] - means[a] || a - b).slice(0, count);
}

function notNCHW(e: Explanation): string | undefined {
  const d = e.map.dims;
  return d.length === 4 || d.length === 3
    ? undefined
    : `Cannot render "${e.method}" as a grid: its map has dims [${d}], expected [N,C,h,w]`;
}

// Without an explicit `methods` list, only maps that need a grid get one.
function notFeatureMap(e: Explanation): string | undefined {
  const d = e.map.dims;
  return d.length === 4 && e.space === "layer" && d[1] > 1
    ? undefined
    : `Cannot render "${e.method}" as a grid: its ${e.space}-space map [${d}] is not a ` +
      "multi-channel layer map";
}

/**
 * Tiles the channels of layer maps `[N,C,h,w]` (C > 1) into `<name>_<method>_grid.png` per
 * image: the chosen channels, most active first, each enlarged by nearest-neighbour sampling and
 * coloured. The PNG's `tEXt` chunk `channels` lists the channel index of each tile in order.
 */
export const gridRender = defineRender({
  name: "grid",
  description: "Tile the channels of feature maps into one PNG per image",
  params: gridParams,
  async run({ batch, explanations }, params) {
    const files: OutputFile[] = [];
    const selected = selectExplanations(explanations, {
      methods: params.methods,
      unfit: params.methods ? notNCHW : notFeatureMap,
    });
    for (const { explanation, key } of selected) {
      const map = asNCHW(await toCpu(explanation.map));
      const [, c, h, w] = map.dims;
      const plane = h * w;
      if (Array.isArray(params.channels)) {
        const bad = params.channels.find((k) => k >= c);
        if (bad !== undefined) {
          throw new ParamError(
            "channels",
            `Cannot show channel ${bad} of "${explanation.method}": its map has ${c} channels (0–${
              c - 1
            })`,
          );
        }
      }
      for (const { row: i, stem } of mapRows(explanation, batch)) {
        const data = map.data.subarray(i * c * plane, (i + 1) * c * plane);
        const chosen = Array.isArray(params.channels)
          ? [...params.channels]
          : topChannels(batchItem(map, i), params.channels);
        const picked = new Float32Array(chosen.length * plane);
        chosen.forEach((k, j) => picked.set(data.subarray(k * plane, (k + 1) * plane), j * plane));
        const normalized = new Float32Array(picked.length);
        if (params.normalize === "global") {
          normalized.set(normalizeMinMax(picked));
        } else {
          for (let j = 0; j < chosen.length; j++) {
            const part = picked.subarray(j * plane, (j + 1) * plane);
            normalized.set(normalizeMinMax(part), j * plane);
          }
        }
        const layout = gridLayout(chosen.length, [h, w], params);
        const big = upsampleNearest(
          tensor(normalized, [1, chosen.length, h, w]),
          [layout.cellHeight, layout.cellWidth],
        );
        const img = drawGrid(big.data, layout, chosen.length, params.colormap);
        files.push({
          path: `${stem}_${key}_grid.png`,
          bytes: encodePng(img, {
            text: {
              Software: "Lantern",
              method: explanation.method,
              ...(explanation.layer ? { layer: explanation.layer } : {}),
              channels: chosen.join(","),
            },
          }),
        });
      }
    }
    return files;
  },
});

function drawGrid(
  tiles: Float32Array,
  layout: GridLayout,
  count: number,
  colormap: GridParams["colormap"],
): RgbaImage {
  const { width, height, cellHeight: ch, cellWidth: cw, padding, columns } = layout;
  const data = new Uint8ClampedArray(width * height * 4).fill(255);
  const colours = applyColormap(tiles, colormap);
  for (let k = 0; k < count; k++) {
    const top = padding + Math.floor(k / columns) * (ch + padding);
    const left = padding + (k % columns) * (cw + padding);
    for (let y = 0; y < ch; y++) {
      const src = (k * ch + y) * cw * 4;
      data.set(colours.subarray(src, src + cw * 4), ((top + y) * width + left) * 4);
    }
  }
  return { width, height, data };
}
