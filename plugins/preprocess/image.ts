/**
 * The `image` preprocess plugin: PNG/JPEG files → a normalized `[N,C,H,W]` batch, using
 * torchvision's ImageNet recipe on PIL by default (`Resize(256)`, `CenterCrop(224)`,
 * `ToTensor()`, `Normalize(mean, std)`), reproduced exactly.
 *
 * This is the one module of the image path that touches `Deno`, and only in
 * {@linkcode readInput}, for inputs given as file paths; inputs given as bytes never reach it.
 *
 * @module
 */
import { z } from "zod";
import { definePreprocess, type PreprocessInput } from "../../pipeline/plugin.ts";
import { LanternError, ParamError } from "../../pipeline/errors.ts";
import type { RgbaImage } from "../../pipeline/types.ts";
import { decodeImage } from "../../kernels/image_decode.ts";
import {
  type AnyImage,
  centerCrop,
  grayToRgba,
  imagesToTensor,
  resizeBilinear,
  shortSideSize,
  type Size,
  toGray,
} from "../../kernels/resize.ts";

/** ImageNet channel means (RGB), as torchvision's pretrained models expect. */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviations (RGB). */
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** One input: a file path, or bytes with a name. */
export type InputSource = PreprocessInput["sources"][number];

/**
 * Read one input. File paths are read with `Deno.readFile`; bytes are passed through.
 *
 * @throws {LanternError} `Cannot read input "x.png": file not found` and the like.
 */
export async function readInput(
  source: InputSource,
): Promise<{ name: string; bytes: Uint8Array }> {
  if (typeof source !== "string") return source;
  if (typeof Deno === "undefined") {
    throw new LanternError(
      `Cannot read input "${source}": file paths need Deno, pass { name, bytes } instead`,
    );
  }
  try {
    return { name: source, bytes: await Deno.readFile(source) };
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "file not found"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied (run with --allow-read)"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new LanternError(`Cannot read input "${source}": ${why}`);
  }
}

/** The file name without directories and without its last extension: `a/b/cat.png` → `cat`. */
export function fileStem(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? path;
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Names for output files, one per input, made unique with `-2`, `-3`… on repeats. */
export function uniqueNames(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k === 1 ? n : `${n}-${k}`;
  });
}

const positive = z.number().int().positive();

/** Parameters of the `image` preprocess plugin. */
export const imageParams = z.object({
  /**
   * `imagenet`: RGB, short side resized to `resize`, centre crop, ImageNet mean/std.
   * `grayscale`: PIL "L", resized straight to the model size, scaled to [0,1].
   * `none`: RGB, resized straight to the model size, scaled to [0,1].
   */
  preset: z.enum(["imagenet", "grayscale", "none"]).optional(),
  /** Model input size, `n` or `[height, width]`; default: the model's input H and W. */
  size: z.union([positive, z.tuple([positive, positive])]).optional(),
  /**
   * Resize the short side to this, then centre-crop to `size`. Default for `imagenet`:
   * `round(short(size) * 256 / 224)` (256 for 224); the other presets resize straight to
   * `size` unless this is given.
   */
  resize: positive.optional(),
  /** Per-channel mean, subtracted after `scale`. */
  mean: z.array(z.number()).min(1).optional(),
  /** Per-channel standard deviation, divided by after the mean. */
  std: z.array(z.number().positive()).min(1).optional(),
  /** Byte value → model range factor. */
  scale: z.number().positive().optional(),
}).strict();

/** Parsed parameters of the `image` preprocess plugin, with the preset decided. */
export type ImageParams = z.infer<typeof imageParams> & {
  preset: "imagenet" | "grayscale" | "none";
};

/**
 * Fill what the pipeline left unset: first from the model's own `lantern.preprocess` metadata,
 * then by its channel count (1 → `grayscale`, else `imagenet`).
 */
export function resolveImageParams(
  params: z.infer<typeof imageParams>,
  model: PreprocessInput["model"],
): ImageParams {
  const raw = model.metadata?.["lantern.preprocess"];
  let fromModel: Partial<z.infer<typeof imageParams>> = {};
  if (raw && params.preset === undefined) {
    const parsed = imageParams.partial().safeParse(JSON.parse(raw));
    if (!parsed.success) {
      throw new LanternError(
        `Cannot use model ${model.name}: its lantern.preprocess metadata is invalid (${
          parsed.error.issues[0].message
        })`,
      );
    }
    fromModel = parsed.data;
  }
  const explicit = Object.fromEntries(
    Object.entries(params).filter(([, v]) => v !== undefined),
  ) as Partial<ImageParams>;
  const merged = { ...fromModel, ...explicit };
  const preset = merged.preset ?? (model.inputShape[1] === 1 ? "grayscale" : "imagenet");
  return { ...merged, preset, scale: merged.scale ?? 1 / 255 } as ImageParams;
}

function modelSize(input: PreprocessInput, params: ImageParams): Size {
  if (params.size !== undefined) {
    const [height, width] = typeof params.size === "number"
      ? [params.size, params.size]
      : params.size;
    return { width, height };
  }
  const shape = input.model.inputShape;
  const height = shape[2], width = shape[3];
  if (shape.length !== 4 || !(height > 0) || !(width > 0)) {
    throw new ParamError(
      "size",
      `Cannot preprocess for model ${input.model.name}: its input shape [${shape}] has no fixed height and width, set "size"`,
    );
  }
  return { width, height };
}

/**
 * Mean, std and value scale that map a [0,1] RGB image into the model's input space (as this
 * preprocess would with its defaults and the model's metadata): for methods and renders that make
 * or show images in the model's input space.
 */
export function modelNormalization(
  model: PreprocessInput["model"],
): { mean: number[]; std: number[]; gain: number } {
  const p = resolveImageParams(imageParams.parse({}), model);
  const imagenet = p.preset === "imagenet";
  return {
    mean: p.mean ?? (imagenet ? [...IMAGENET_MEAN] : [0, 0, 0]),
    std: p.std ?? (imagenet ? [...IMAGENET_STD] : [1, 1, 1]),
    // Pixels are v/255·scale before the mean is subtracted; our images are v/255.
    gain: 255 * (p.scale ?? 1 / 255),
  };
}

function normalization(params: ImageParams, channels: number): { mean: number[]; std: number[] } {
  const imagenet = params.preset === "imagenet";
  const mean = params.mean ?? (imagenet ? [...IMAGENET_MEAN] : new Array(channels).fill(0));
  const std = params.std ?? (imagenet ? [...IMAGENET_STD] : new Array(channels).fill(1));
  for (const [key, values] of [["mean", mean], ["std", std]] as const) {
    if (values.length !== channels) {
      throw new ParamError(
        key,
        `Cannot use ${key} [${values}]: it has ${values.length} value(s), preset "${params.preset}" makes ${channels} channel(s)`,
      );
    }
  }
  return { mean, std };
}

/** Resize and crop one decoded picture to the model size, per the preset. */
function fit(image: RgbaImage, size: Size, params: ImageParams): AnyImage {
  const source: AnyImage = params.preset === "grayscale" ? toGray(image) : image;
  const short = params.resize ??
    (params.preset === "imagenet"
      ? Math.round((Math.min(size.width, size.height) * 256) / 224)
      : undefined);
  if (short === undefined) return resizeBilinear(source, size);
  return centerCrop(resizeBilinear(source, shortSideSize(source, short)), size);
}

/**
 * The `image` preprocess plugin. Sources are file paths or `{ name, bytes }`; the format is
 * sniffed from the bytes. The batch's `names` are the file stems and its `images` the RGBA
 * pictures at model resolution (after resize and crop), for drawing overlays.
 */
export const imagePreprocess = definePreprocess({
  name: "image",
  description: "PNG/JPEG files → normalized NCHW batch (torchvision ImageNet recipe by default)",
  params: imageParams,
  async run(input, raw) {
    const { sources, model } = input;
    const params = resolveImageParams(raw, model);
    if (sources.length === 0) throw new LanternError("Cannot preprocess: no input files given");
    const channels = params.preset === "grayscale" ? 1 : 3;
    const wanted = model.inputShape[1];
    if (wanted > 0 && wanted !== channels) {
      const first = typeof sources[0] === "string" ? sources[0] : sources[0].name;
      const hint = wanted === 1
        ? ` — use preset "grayscale"`
        : wanted === 3
        ? ` — use preset "imagenet" or "none"`
        : "";
      throw new LanternError(
        `Cannot preprocess "${first}" for model: it takes ${wanted} channel(s), preset "${params.preset}" makes ${channels}${hint}`,
      );
    }
    const size = modelSize(input, params);
    const norm = normalization(params, channels);
    const fitted: AnyImage[] = [];
    const names: string[] = [];
    for (const source of sources) {
      const { name, bytes } = await readInput(source);
      let decoded: RgbaImage;
      try {
        decoded = decodeImage(bytes, name);
      } catch (e) {
        throw new LanternError(e instanceof Error ? e.message : String(e));
      }
      fitted.push(fit(decoded, size, params));
      names.push(fileStem(name));
    }
    return {
      tensor: imagesToTensor(fitted, { ...norm, scale: params.scale }),
      names: uniqueNames(names),
      images: fitted.map((im) => "channels" in im ? grayToRgba(im) : im),
    };
  },
});
