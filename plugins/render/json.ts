/**
 * The `json` render: predictions and explanation metadata of every image in one JSON file.
 *
 * @module
 */
import { z } from "zod";
import { batchItem, type Tensor, toCpu, valueRange } from "../../kernels/tensor.ts";
import { defineRender } from "../../pipeline/plugin.ts";
import type { Explanation, Model, Prediction } from "../../pipeline/types.ts";
import { mapRows } from "./heatmap.ts";

/** Parameters of the `json` render. */
export const jsonParams = z.object({
  /** Output file name, relative to the output directory. */
  file: z.string().min(1).default("results.json"),
  /** Predictions to list per image, best first. */
  topk: z.number().int().positive().default(5),
}).strict();

/** Parsed parameters of the `json` render. */
export type JsonParams = z.infer<typeof jsonParams>;

/** One explanation of one image, as written to the JSON file. */
export interface ExplanationRecord {
  /** Method name. */
  readonly method: string;
  /** Target class index. */
  readonly target: number;
  /** Target class name, when the model has labels. */
  readonly targetLabel?: string;
  /** Tensor the method looked at. */
  readonly layer?: string;
  /** Dims of this image's map, batch axis 1 (as in its `.npy`). */
  readonly shape: readonly number[];
  /** Smallest and largest value of this image's map. */
  readonly range: readonly [number, number];
  /** Milliseconds by phase (for the whole batch). */
  readonly timings: Readonly<Record<string, number>>;
  /** Backend that computed it. */
  readonly backend: string;
  /** `input` or `layer`. */
  readonly space: "input" | "layer";
  /** Method-specific facts, JSON-safe (typed arrays dropped). */
  readonly info?: unknown;
}

/** One image, as written to the JSON file. */
export interface ImageRecord {
  /** The image's name (output file stem). */
  readonly name: string;
  /** Top predictions, best first. */
  readonly predictions: readonly Prediction[];
  /** Every explanation of the image, in pipeline order. */
  readonly explanations: readonly ExplanationRecord[];
}

/** The whole JSON file. */
export interface Results {
  /** The model's name and backend. */
  readonly model: { readonly name: string; readonly backend: Model["backend"] };
  /** One record per image, in batch order. */
  readonly images: readonly ImageRecord[];
}

/**
 * A copy of `value` that `JSON.stringify` writes faithfully: typed arrays, `ArrayBuffer`s,
 * functions, symbols and repeated references are dropped, non-finite numbers become `null`,
 * bigints become numbers (or strings when too large), `Map`s become objects and `Date`s ISO text.
 * Returns `undefined` for a dropped value.
 */
export function jsonSafe(value: unknown, seen: Set<object> = new Set()): unknown {
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) ? value : null;
    case "bigint":
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case "string":
    case "boolean":
      return value;
    case "object":
      break;
    default:
      return undefined;
  }
  if (value === null) return null;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return undefined;
  if (value instanceof Date) return value.toISOString();
  if (seen.has(value)) return undefined;
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => jsonSafe(v, seen) ?? null);
    const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const safe = jsonSafe(v, seen);
      if (safe !== undefined) out[String(k)] = safe;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

function explanationRecord(
  e: Explanation,
  map: Tensor,
  at: { readonly index: number; readonly labels?: readonly string[] },
): ExplanationRecord {
  const { index, labels } = at; // index: the row of the map
  const item = batchItem(map, index);
  const target = e.targets[index];
  // Arrays in `info` with one entry per row of the map (e.g. IG's `delta`) are split by row.
  const rows = map.dims[0];
  const info = e.info === undefined ? undefined : jsonSafe(
    Object.fromEntries(
      Object.entries(e.info).map((
        [k, v],
      ) => [k, Array.isArray(v) && v.length === rows ? v[index] : v]),
    ),
  );
  return {
    method: e.method,
    target,
    ...(labels?.[target] !== undefined ? { targetLabel: labels[target] } : {}),
    ...(e.layer !== undefined ? { layer: e.layer } : {}),
    shape: item.dims,
    range: valueRange(item.data),
    timings: { ...e.timings },
    backend: e.backend,
    space: e.space,
    ...(info !== undefined ? { info } : {}),
  };
}

/**
 * Writes one JSON file (`results.json` by default) with, per image, its top-k predictions and
 * each explanation's method, target, layer, shape, value range, timings, backend, space and info.
 */
export const jsonRender = defineRender({
  name: "json",
  description: "Write predictions and explanation metadata per image as one JSON file",
  params: jsonParams,
  async run({ batch, explanations, predictions, model }, params) {
    const rows = explanations.map((e) => mapRows(e, batch));
    const maps = await Promise.all(explanations.map((e) => toCpu(e.map)));
    const images: ImageRecord[] = [];
    for (let i = 0; i < batch.names.length; i++) {
      const records = explanations.flatMap((e, j) =>
        rows[j].filter((r) => r.image === i).map((r) =>
          explanationRecord(e, maps[j], { index: r.row, labels: model.labels })
        )
      );
      images.push({
        name: batch.names[i],
        predictions: (predictions[i] ?? []).slice(0, params.topk).map((p) => ({
          index: p.index,
          ...(p.label !== undefined ? { label: p.label } : {}),
          score: p.score,
          probability: p.probability,
        })),
        explanations: records,
      });
    }
    const results: Results = { model: { name: model.name, backend: model.backend }, images };
    const text = JSON.stringify(jsonSafe(results), null, 2) + "\n";
    return [{ path: params.file, bytes: new TextEncoder().encode(text) }];
  },
});
