/**
 * The `npy` render: raw attribution maps as NumPy `.npy` files.
 *
 * @module
 */
import { z } from "zod";
import { encodeNpy } from "../../kernels/npy.ts";
import { batchItem, toCpu } from "../../kernels/tensor.ts";
import { defineRender } from "../../pipeline/plugin.ts";
import type { OutputFile } from "../../pipeline/types.ts";
import { mapRows, selectExplanations } from "./heatmap.ts";

/** Parameters of the `npy` render. */
export const npyParams = z.object({
  /** One `<method>.npy` holding the whole batch instead of one file per image. */
  batch: z.boolean().default(false),
  /** Methods to write (default: all). */
  methods: z.array(z.string().min(1)).min(1).optional(),
}).strict();

/** Parsed parameters of the `npy` render. */
export type NpyParams = z.infer<typeof npyParams>;

/**
 * Writes each explanation's map unchanged as float32 `.npy`: `<name>_<method>.npy` per image
 * with a leading batch axis of 1 (e.g. `[1,C,H,W]`), or with `batch: true` one `<method>.npy`
 * holding all N images.
 */
export const npyRender = defineRender({
  name: "npy",
  description: "Write raw maps as NumPy .npy files (per image, or one per method)",
  params: npyParams,
  async run({ batch, explanations }, params) {
    const files: OutputFile[] = [];
    for (const { explanation, key } of selectExplanations(explanations, params)) {
      const map = await toCpu(explanation.map);
      if (params.batch) {
        files.push({ path: `${key}.npy`, bytes: encodeNpy(map) });
        continue;
      }
      for (const { row, stem } of mapRows(explanation, batch)) {
        files.push({ path: `${stem}_${key}.npy`, bytes: encodeNpy(batchItem(map, row)) });
      }
    }
    return files;
  },
});
