/**
 * The `superpixels` render: LIME's picture of an explanation (`get_image_and_mask` with
 * `mark_boundaries`). For every explanation that carries a superpixel table in
 * `info.superpixels` (LIME does), it keeps the `topk` superpixels of largest positive weight
 * (and, unless `positive_only`, the `topk` most negative ones), shows them over the photo —
 * positive tinted green, negative red — dims the rest, and outlines the kept segments' edges in
 * yellow. One PNG per image: `<name>_<method>_superpixels.png`.
 *
 * Segments are recovered from the map itself (each pixel holds its superpixel's weight), matched
 * within the table's bounding boxes, so the JSON-sized `info` needs no per-pixel labels.
 *
 * @module
 */
import { z } from "zod";
import { encodePng } from "../../kernels/png_encode.ts";
import { batchItem, toCpu } from "../../kernels/tensor.ts";
import { defineRender } from "../../pipeline/plugin.ts";
import type { Batch, Explanation, OutputFile, RgbaImage } from "../../pipeline/types.ts";
import { mapRows, selectExplanations } from "./heatmap.ts";

/** Parameters of the `superpixels` render. */
export const superpixelsParams = z.object({
  /** Superpixels kept per sign. */
  topk: z.number().int().positive().default(5),
  /** Keep only positive evidence (LIME's `positive_only`). */
  positive_only: z.boolean().default(true),
  /** Brightness left to the superpixels not kept. */
  dim: z.number().min(0).max(1).default(0.3),
  /** Smallest side of the output picture; smaller inputs are enlarged by whole pixels. */
  size: z.number().int().positive().optional(),
  /** Methods to render (default: every explanation with a superpixel table). */
  methods: z.array(z.string().min(1)).min(1).optional(),
}).strict();

// Constants of the per-pixel loop, made once rather than per pixel.
const NEIGHBOURS = [[0, 1], [0, -1], [1, 0], [-1, 0]] as const;
const GREEN = [0, 255, 0] as const, RED = [255, 0, 0] as const, YELLOW = [255, 255, 0] as const;

interface Row {
  readonly weight: number;
  readonly bbox: readonly [number, number, number, number];
}

function tables(e: Explanation): readonly (readonly Row[])[] | undefined {
  const t = e.info?.superpixels;
  return Array.isArray(t) && t.every(Array.isArray) ? t as Row[][] : undefined;
}

/** The photo of image `i`, or its input tensor min–max scaled to gray/RGB. */
function photo(batch: Batch, i: number): RgbaImage {
  const [, c, h, w] = batch.tensor.dims;
  const img = batch.images?.[i];
  if (img && img.width === w && img.height === h) return img;
  const x = batchItem(batch.tensor, i).data;
  let lo = Infinity, hi = -Infinity;
  for (const v of x) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const s = hi > lo ? 255 / (hi - lo) : 0;
  const data = new Uint8ClampedArray(h * w * 4);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) data[4 * p + k] = (x[(c === 3 ? k : 0) * h * w + p] - lo) * s;
    data[4 * p + 3] = 255;
  }
  return { width: w, height: h, data };
}

/** `img` with each pixel repeated into a `zoom`×`zoom` block, so segment edges stay crisp. */
function enlarge(img: RgbaImage, zoom: number): RgbaImage {
  if (zoom === 1) return img;
  const w = img.width * zoom, h = img.height * zoom;
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (Math.floor(y / zoom) * img.width + Math.floor(x / zoom)) * 4;
      data.set(img.data.subarray(src, src + 4), (y * w + x) * 4);
    }
  }
  return { width: w, height: h, data };
}

/** Draws the top superpixels of LIME-style explanations over their photos. */
export const superpixelsRender = defineRender({
  name: "superpixels",
  description: "Top-k superpixels of LIME over the photo, the rest dimmed (PNG per image)",
  params: superpixelsParams,
  async run({ batch, explanations }, params) {
    const files: OutputFile[] = [];
    const selected = selectExplanations(explanations, {
      methods: params.methods,
      unfit: (e) =>
        tables(e) && e.space === "input" && e.map.dims.length === 4
          ? undefined
          : `Cannot render "${e.method}" as superpixels: it has no superpixel table in its info`,
    });
    for (const { explanation, key } of selected) {
      const map = await toCpu(explanation.map);
      const [, , h, w] = map.dims;
      for (const { row, image, stem } of mapRows(explanation, batch)) {
        const table = tables(explanation)![row];
        const byWeight = table.map((_, j) => j).sort((a, b) => table[b].weight - table[a].weight);
        const kept = byWeight.filter((j) => table[j].weight > 0).slice(0, params.topk);
        if (!params.positive_only) {
          kept.push(...byWeight.filter((j) => table[j].weight < 0).reverse().slice(0, params.topk));
        }
        const values = batchItem(map, row).data.subarray(0, h * w);
        const keep = new Int8Array(h * w); // 1 positive, −1 negative, 0 dropped
        for (const j of kept) {
          const v = Math.fround(table[j].weight);
          const [y0, x0, y1, x1] = table[j].bbox;
          for (let y = y0; y < y1; y++) {
            for (let x = x0; x < x1; x++) {
              if (values[y * w + x] === v) {
                keep[y * w + x] = v > 0 ? 1 : -1;
              }
            }
          }
        }
        const src = photo(batch, image).data;
        const data = new Uint8ClampedArray(h * w * 4);
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const p = y * w + x;
            const k = keep[p];
            const edge = k !== 0 && NEIGHBOURS.some(([dy, dx]) => {
              const yy = y + dy, xx = x + dx;
              return yy < 0 || yy >= h || xx < 0 || xx >= w || values[yy * w + xx] !== values[p];
            });
            const tint = k > 0 ? GREEN : RED;
            for (let c = 0; c < 3; c++) {
              data[4 * p + c] = edge
                ? YELLOW[c]
                : k === 0
                ? src[4 * p + c] * params.dim
                : 0.8 * src[4 * p + c] + 0.2 * tint[c];
            }
            data[4 * p + 3] = 255;
          }
        }
        const zoom = params.size ? Math.max(1, Math.ceil(params.size / Math.min(h, w))) : 1;
        files.push({
          path: `${stem}_${key}_superpixels.png`,
          bytes: encodePng(enlarge({ width: w, height: h, data }, zoom)),
        });
      }
    }
    return files;
  },
});
