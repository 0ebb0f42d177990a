/**
 * Class targets: parameters schema, resolution against logits, and top-k predictions.
 *
 * @module
 */
import { z } from "zod";
import type { Tensor } from "../kernels/tensor.ts";
import { ParamError } from "./errors.ts";
import type { Prediction } from "./types.ts";

/**
 * A target as users write it: a class index; `"top1"` (the best class) or `"topK"` (the K best,
 * several per image); or a list with one entry per image, each an index, `"topK"`, or a list of
 * indices (several per image).
 */
export const targetParam: z.ZodDefault<
  z.ZodUnion<
    readonly [
      z.ZodNumber,
      z.ZodString,
      z.ZodArray<z.ZodUnion<readonly [z.ZodNumber, z.ZodString, z.ZodArray<z.ZodNumber>]>>,
    ]
  >
> = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^(top\d+|\d+)$/, "expected a class index or top1, top2, …"),
  z.array(
    z.union([
      z.number().int().nonnegative(),
      z.string().regex(/^(top\d+|\d+)$/, "expected a class index or top1, top2, …"),
      z.array(z.number().int().nonnegative()).min(1),
    ]),
  ).min(1),
]).default("top1");

/** The type of {@linkcode targetParam}. */
export type Target = z.infer<typeof targetParam>;

/** Indices of `scores` sorted by descending score. */
export function argsortDesc(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
}

/** Targets resolved to (image, class) rows: row r explains image `images[r]` for class `targets[r]`. */
export interface TargetRows {
  /** Class of each row. */
  readonly targets: number[];
  /** Image (batch index) of each row. */
  readonly images: number[];
}

/** Resolve `target` against `logits` `[N,K]` into rows, image-major. */
export function resolveTargetRows(target: Target, logits: Tensor): TargetRows {
  const [n, k] = logits.dims;
  const check = (idx: number) => {
    if (!(Number.isInteger(idx) && idx >= 0 && idx < k)) {
      throw new ParamError(
        "target",
        `target ${idx} is out of range: the model has ${k} classes (0–${k - 1})`,
      );
    }
    return idx;
  };
  const forImage = (spec: number | string | readonly number[], i: number): number[] => {
    if (Array.isArray(spec)) return spec.map(check);
    if (typeof spec === "string" && spec.startsWith("top")) {
      const count = Number(spec.slice(3));
      if (count < 1 || count > k) {
        throw new ParamError(
          "target",
          `target ${spec} is out of range: the model has ${k} classes`,
        );
      }
      return argsortDesc(logits.data.subarray(i * k, (i + 1) * k)).slice(0, count);
    }
    return [check(Number(spec))];
  };
  if (Array.isArray(target) && target.length !== n) {
    throw new ParamError(
      "target",
      `target list has ${target.length} entries, expected one per image (${n})`,
    );
  }
  const rows: TargetRows = { targets: [], images: [] };
  for (let i = 0; i < n; i++) {
    const spec = Array.isArray(target) ? target[i] : target as number | string;
    for (const t of forImage(spec, i)) {
      rows.targets.push(t);
      rows.images.push(i);
    }
  }
  return rows;
}

/** Resolve `target` to one class per image; several per image is an error here. */
export function resolveTargets(target: Target, logits: Tensor): number[] {
  const rows = resolveTargetRows(target, logits);
  if (rows.targets.length !== logits.dims[0]) {
    throw new ParamError("target", "this method takes one target per image, not several");
  }
  return rows.targets;
}

/** Whether rows map one-to-one onto images (no image has several targets). */
export function isOnePerImage(rows: TargetRows): boolean {
  return rows.images.every((img, r) => img === r);
}

/** The rows that explain image `image`, in row order (empty when it has none). */
export function rowsOfImage(rows: TargetRows, image: number): number[] {
  return rows.images.flatMap((img, r) => img === image ? [r] : []);
}

/** Which score of a class an explanation follows: the softmax probability or the raw logit. */
export const outputParam: z.ZodDefault<z.ZodEnum<{ probability: "probability"; logit: "logit" }>> =
  z.enum(["probability", "logit"]).default("probability");

/** The type of {@linkcode outputParam}. */
export type ScoreOutput = z.infer<typeof outputParam>;

/**
 * The softmax of one row of scores as a function of the class: p(i) = e^(z_i − m) / Σ_j e^(z_j − m),
 * with m the row's maximum for stability.
 */
export function softmaxOf(scores: ArrayLike<number>): (index: number) => number {
  let max = -Infinity;
  for (let j = 0; j < scores.length; j++) max = Math.max(max, scores[j]);
  let sum = 0;
  for (let j = 0; j < scores.length; j++) sum += Math.exp(scores[j] - max);
  return (index) => Math.exp(scores[index] - max) / sum;
}

/**
 * One row of scores as a function of the class: its softmax ({@linkcode softmaxOf}) for
 * `"probability"`, the raw score for `"logit"`.
 */
export function scoreOf(
  scores: ArrayLike<number>,
  output: ScoreOutput,
): (index: number) => number {
  return output === "probability" ? softmaxOf(scores) : (index) => scores[index];
}

/** Softmax of each row of `logits` `[N,K]`. */
export function softmaxRows(logits: Tensor): Float32Array {
  const [n, k] = logits.dims;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const row = logits.data.subarray(i * k, (i + 1) * k);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += out[i * k + j] = Math.exp(row[j] - max);
    for (let j = 0; j < k; j++) out[i * k + j] /= sum;
  }
  return out;
}

/** The `topk` best classes of each image, with labels and softmax probabilities. */
export function topPredictions(
  logits: Tensor,
  options: { topk?: number; labels?: readonly string[] } = {},
): Prediction[][] {
  const [n, k] = logits.dims;
  const probs = softmaxRows(logits);
  return Array.from({ length: n }, (_, i) => {
    const row = logits.data.subarray(i * k, (i + 1) * k);
    return argsortDesc(row).slice(0, options.topk ?? 5).map((index) => ({
      index,
      label: options.labels?.[index],
      score: row[index],
      probability: probs[i * k + index],
    }));
  });
}
