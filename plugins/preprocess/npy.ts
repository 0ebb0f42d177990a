/**
 * The `npy` preprocess plugin: already-preprocessed float32 NCHW `.npy` files → one batch.
 *
 * @module
 */
import { z } from "zod";
import { definePreprocess } from "../../pipeline/plugin.ts";
import { LanternError } from "../../pipeline/errors.ts";
import { decodeNpy } from "../../kernels/npy.ts";
import { concatBatch, type Tensor, tensor } from "../../kernels/tensor.ts";
import { fileStem, readInput, uniqueNames } from "./image.ts";

/** Parameters of the `npy` preprocess plugin (none). */
export const npyParams = z.object({}).strict();

function shapeText(dims: readonly number[]): string {
  return `[${dims.map((d, i) => (i === 0 ? "N" : d > 0 ? String(d) : "?")).join(",")}]`;
}

/**
 * The `npy` preprocess plugin. Each file holds `[n,C,H,W]` (or `[C,H,W]`, read as n = 1)
 * float32 or float64 values, already normalized for the model; files are concatenated along
 * the batch axis. Names are the file stems, with `_<i>` appended for files holding several
 * items. The batch has no `images`, so renders draw on nothing.
 */
export const npyPreprocess = definePreprocess({
  name: "npy",
  description: "float32 NCHW .npy files → batch, used as they are",
  params: npyParams,
  async run({ sources, model }) {
    if (sources.length === 0) throw new LanternError("Cannot preprocess: no input files given");
    const expected = model.inputShape;
    const parts: Tensor[] = [];
    const names: string[] = [];
    for (const source of sources) {
      const { name, bytes } = await readInput(source);
      let t: Tensor;
      try {
        t = decodeNpy(bytes, `"${name}"`);
      } catch (e) {
        throw new LanternError(e instanceof Error ? e.message : String(e));
      }
      if (t.dims.length === 3) t = tensor(t.data, [1, ...t.dims], "NCHW");
      const fits = t.dims.length === 4 && expected.length === 4 &&
        t.dims.every((d, i) => i === 0 || !(expected[i] > 0) || expected[i] === d);
      if (!fits) {
        throw new LanternError(
          `Cannot use "${name}" as input of model ${model.name}: expected ${
            shapeText(expected)
          }, got [${t.dims}]`,
        );
      }
      parts.push(tensor(t.data, t.dims, "NCHW"));
      const stem = fileStem(name);
      const n = t.dims[0];
      for (let i = 0; i < n; i++) names.push(n === 1 ? stem : `${stem}_${i}`);
    }
    const batch = parts.length === 1 ? parts[0] : concatBatch(parts);
    if (batch.dims[0] === 0) {
      throw new LanternError("Cannot preprocess: the .npy files hold no items");
    }
    return { tensor: batch, names: uniqueNames(names) };
  },
});
