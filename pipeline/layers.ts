/**
 * Layer (tensor) resolution shared by methods: validate a name with close-match hints, or pick the
 * default layer — the last 4-D activation feeding the classifier head.
 *
 * @module
 */
import { findHead } from "../graph/head.ts";
import { decodeModel, type ModelProto } from "../graph/onnx_io.ts";
import { didYouMean, ParamError } from "./errors.ts";
import type { Model } from "./types.ts";

const protos = new WeakMap<Model, ModelProto>();

/** The decoded ONNX graph of a model, decoded once. */
export function modelProto(model: Model): ModelProto {
  let proto = protos.get(model) ?? (model as { proto?: ModelProto }).proto;
  if (!proto) {
    proto = decodeModel(model.onnx);
    protos.set(model, proto);
  }
  return proto;
}

/** The model's tensors as `name → shape`. */
async function shapes(model: Model): Promise<Map<string, readonly number[]>> {
  return new Map((await model.tensors()).map((t) => [t.name, t.shape]));
}

/** The tensor the CAM family looks at by default: the 4-D input of the global pooling head, else the last 4-D tensor. */
export async function defaultLayer(model: Model): Promise<string> {
  const proto = modelProto(model);
  const head = findHead(proto, model.outputName);
  if (head.ok) return head.head.layer;
  if (head.layer) return head.layer;
  const all = await model.tensors();
  const last = [...all].reverse().find((t) => t.shape.length === 4 && t.op !== "input");
  if (!last) {
    throw new ParamError(
      "layer",
      `Cannot pick a default layer: model "${model.name}" has no 4-D tensor`,
    );
  }
  return last.name;
}

/** Validate `layer` (or pick the default) and return its name and shape at batch 1. */
export async function resolveLayer(
  model: Model,
  layer: string | undefined,
  options: { rank?: number } = {},
): Promise<{ name: string; shape: readonly number[] }> {
  const name = layer ?? await defaultLayer(model);
  const known = await shapes(model);
  const shape = known.get(name);
  if (!shape) {
    throw new ParamError("layer", `unknown tensor '${name}'${didYouMean(name, known.keys())}`);
  }
  if (options.rank && shape.length !== options.rank && shape[0] !== -1) {
    throw new ParamError(
      "layer",
      `tensor '${name}' has shape [${shape}], expected a ${options.rank}-D activation`,
    );
  }
  return { name, shape };
}
