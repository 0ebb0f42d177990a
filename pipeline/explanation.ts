/**
 * Assemble an {@linkcode Explanation} from a method's map and its target rows, so every method
 * reports targets, range, timings and backend the same way.
 *
 * @module
 */
import { type Tensor, valueRange } from "../kernels/tensor.ts";
import { isOnePerImage, type TargetRows } from "./targets.ts";
import type { Explanation, Model } from "./types.ts";

/** Fields a method supplies; the rest is derived. */
export interface ExplanationParts {
  method: string;
  rows: TargetRows;
  map: Tensor;
  space: "input" | "layer";
  layer?: string;
  timings?: Record<string, number>;
  info?: Record<string, unknown>;
}

/** Build the result of a method run on `model`. */
export function explanation(model: Model, parts: ExplanationParts): Explanation {
  return {
    method: parts.method,
    targets: parts.rows.targets,
    ...(isOnePerImage(parts.rows) ? {} : { images: parts.rows.images }),
    ...(parts.layer ? { layer: parts.layer } : {}),
    map: parts.map,
    range: valueRange(parts.map.data),
    timings: parts.timings ?? {},
    backend: model.backend.name,
    space: parts.space,
    ...(parts.info ? { info: parts.info } : {}),
  };
}

/** Milliseconds since `start`, for timings. */
export function since(start: number): number {
  return performance.now() - start;
}
