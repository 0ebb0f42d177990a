/**
 * The geometry and colour steps of torchvision's ImageNet preprocessing on PIL images, done
 * exactly as PIL 9.4 and torchvision 0.14 do them:
 *
 * - {@linkcode resizeBilinear}: `Image.resize(size, BILINEAR)`. This is PIL's separable
 *   convolution: the triangle filter's support grows with the downscale factor (so it
 *   antialiases), coefficients are 22-bit fixed point, and results are rounded to uint8 after
 *   the horizontal pass and again after the vertical one.
 * - {@linkcode shortSideSize}: the output size of `transforms.Resize(n)`.
 * - {@linkcode centerCrop}: `transforms.CenterCrop`, including its zero padding and its
 *   Python `round` (half to even) on the offsets.
 * - {@linkcode toGray}: `Image.convert("L")`.
 * - {@linkcode imagesToTensor}: `ToTensor()` then `Normalize(mean, std)`, in float32 steps.
 *
 * RGBA input is treated as `.convert("RGB")` would treat it: alpha is dropped, not composited.
 * Web-standard only (no `Deno` APIs), so it runs on edge runtimes.
 *
 * @module
 */
import { type Tensor, tensor } from "./tensor.ts";
import type { RgbaImage } from "../pipeline/types.ts";

/** An 8-bit single-channel picture, like PIL's mode "L". */
export interface GrayImage {
  /** Marks the single channel (an {@linkcode RgbaImage} has no such field). */
  readonly channels: 1;
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** `width * height` bytes, row-major. */
  readonly data: Uint8ClampedArray;
}

/** Width and height in pixels. */
export interface Size {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
}

/** An RGBA or a greyscale picture. */
export type AnyImage = RgbaImage | GrayImage;

function isGray(image: AnyImage): image is GrayImage {
  return (image as GrayImage).channels === 1;
}

function stride(image: AnyImage): number {
  return isGray(image) ? 1 : 4;
}

function checkSize(size: Size, what: string): void {
  if (
    !(Number.isInteger(size.width) && Number.isInteger(size.height)) || size.width < 1 ||
    size.height < 1
  ) {
    throw new RangeError(
      `Cannot ${what}: size ${size.width}x${size.height} is not a positive integer size`,
    );
  }
}

/**
 * The size `transforms.Resize(short)` gives: the short side becomes `short`, the long side
 * `int(short * long / short_side)` (truncated, computed in float64 as Python does).
 */
export function shortSideSize(size: Size, short: number): Size {
  const { width: w, height: h } = size;
  if (w <= h) return { width: short, height: Math.trunc((short * h) / w) };
  return { width: Math.trunc((short * w) / h), height: short };
}

// PIL's Resample.c: 32 bits minus 8 for the pixel and 2 for headroom.
const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);
const MAX_VALUE = 255 << PRECISION_BITS;

interface Coefficients {
  /** Taps per output sample (PIL's `ksize`). */
  readonly taps: number;
  /** First input sample of each output sample. */
  readonly start: Int32Array;
  /** Number of input samples of each output sample. */
  readonly count: Int32Array;
  /** `taps` fixed-point weights per output sample. */
  readonly weights: Int32Array;
}

/** PIL's `precompute_coeffs` and `normalize_coeffs_8bpc` for the bilinear filter. */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // bilinear support 1.0, widened when downscaling
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const k = new Float64Array(taps);
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C casts to int, which truncates toward zero; the clamps follow the C order.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      const f = w * (1 << PRECISION_BITS);
      weights[xx * taps + x] = w < 0 ? Math.trunc(-0.5 + f) : Math.trunc(0.5 + f);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { taps, start, count, weights };
}

function clip8(v: number): number {
  return v >= MAX_VALUE ? 255 : v <= 0 ? 0 : v >> PRECISION_BITS;
}

/** Horizontal pass over every row: RGB of RGBA (`step` 4) or grey (`step` 1). */
function horizontal(
  src: Uint8ClampedArray,
  width: number,
  height: number,
  step: number,
  outWidth: number,
): Uint8ClampedArray {
  const { taps, start, count, weights } = coefficients(width, outWidth);
  const dst = new Uint8ClampedArray(outWidth * height * step);
  for (let y = 0; y < height; y++) {
    const row = y * width * step;
    const outRow = y * outWidth * step;
    for (let xx = 0; xx < outWidth; xx++) {
      const first = row + start[xx] * step;
      const n = count[xx];
      const kOff = xx * taps;
      const o = outRow + xx * step;
      if (step === 4) {
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let x = 0, p = first; x < n; x++, p += 4) {
          const w = weights[kOff + x];
          s0 += src[p] * w;
          s1 += src[p + 1] * w;
          s2 += src[p + 2] * w;
        }
        dst[o] = clip8(s0);
        dst[o + 1] = clip8(s1);
        dst[o + 2] = clip8(s2);
      } else {
        let ss = HALF;
        for (let x = 0; x < n; x++) ss += src[first + x] * weights[kOff + x];
        dst[o] = clip8(ss);
      }
    }
  }
  return dst;
}

/** Vertical pass, row by row so reads stay sequential. */
function vertical(
  src: Uint8ClampedArray,
  width: number,
  height: number,
  step: number,
  outHeight: number,
): Uint8ClampedArray {
  const { taps, start, count, weights } = coefficients(height, outHeight);
  const rowLen = width * step;
  const dst = new Uint8ClampedArray(rowLen * outHeight);
  const acc = new Float64Array(rowLen);
  for (let yy = 0; yy < outHeight; yy++) {
    acc.fill(HALF);
    const n = count[yy];
    for (let y = 0; y < n; y++) {
      const w = weights[yy * taps + y];
      const row = (start[yy] + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += src[row + i] * w;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) dst[o + i] = clip8(acc[i]);
  }
  return dst;
}

/**
 * Resize with PIL's `Image.resize(size, Image.BILINEAR)` (antialiased when shrinking),
 * bit-exact with PIL 9.4. RGBA input comes back with alpha 255: alpha is dropped as
 * `.convert("RGB")` drops it, and is neither resampled nor premultiplied.
 */
export function resizeBilinear<T extends AnyImage>(image: T, size: Size): T {
  checkSize(size, "resize");
  const step = stride(image);
  let data = image.data;
  let { width, height } = image;
  // PIL skips a pass whose axis keeps its size (that pass would be the identity anyway).
  if (size.width !== width) {
    data = horizontal(data, width, height, step, size.width);
    width = size.width;
  }
  if (size.height !== height) {
    data = vertical(data, width, height, step, size.height);
    height = size.height;
  }
  if (data === image.data) data = data.slice();
  if (step === 4) { for (let i = 3; i < data.length; i += 4) data[i] = 255; }
  return { ...image, width, height, data };
}

/** Python's `round` on a float (numpy's `around`): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * `transforms.CenterCrop(size)`: offsets `round((W - w) / 2)` and `round((H - h) / 2)` with
 * Python's half-to-even `round`; where the image is smaller than the crop it is padded with
 * zeros first, `(w - W) // 2` on the left and top, as torchvision pads.
 */
export function centerCrop<T extends AnyImage>(image: T, size: Size): T {
  checkSize(size, "crop");
  const step = stride(image);
  const { width: W, height: H } = image;
  const left = size.width > W
    ? -Math.floor((size.width - W) / 2)
    : roundHalfEven((W - size.width) / 2);
  const top = size.height > H
    ? -Math.floor((size.height - H) / 2)
    : roundHalfEven((H - size.height) / 2);
  const data = new Uint8ClampedArray(size.width * size.height * step);
  const x0 = Math.max(0, -left), x1 = Math.min(size.width, W - left);
  for (let y = 0; y < size.height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= H || x1 <= x0) continue;
    const from = (sy * W + x0 + left) * step;
    data.set(image.data.subarray(from, from + (x1 - x0) * step), (y * size.width + x0) * step);
  }
  return { ...image, width: size.width, height: size.height, data };
}

/**
 * `Image.convert("L")`: `L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16`, PIL's 16-bit
 * fixed-point form of ITU-R 601-2 luma (R*299/1000 + G*587/1000 + B*114/1000), rounded.
 */
export function toGray(image: RgbaImage): GrayImage {
  const n = image.width * image.height;
  const src = image.data;
  const data = new Uint8ClampedArray(n);
  for (let i = 0; i < n; i++) {
    data[i] = (src[i * 4] * 19595 + src[i * 4 + 1] * 38470 + src[i * 4 + 2] * 7471 + 0x8000) >>
      16;
  }
  return { channels: 1, width: image.width, height: image.height, data };
}

/** Grey to opaque RGBA with R = G = B, e.g. for drawing overlays on a greyscale input. */
export function grayToRgba(image: GrayImage): RgbaImage {
  const n = image.width * image.height;
  const data = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    const g = image.data[i];
    data[i * 4] = data[i * 4 + 1] = data[i * 4 + 2] = g;
    data[i * 4 + 3] = 255;
  }
  return { width: image.width, height: image.height, data };
}

/** Options of {@linkcode imagesToTensor}. */
export interface TensorOptions {
  /** Per-channel mean subtracted after scaling: 3 values for RGB input, 1 for grey. */
  readonly mean: readonly number[];
  /** Per-channel divisor applied after the mean. */
  readonly std: readonly number[];
  /** Factor from byte values to the model's range. Default `1 / 255`, as `ToTensor()`. */
  readonly scale?: number;
}

/**
 * Stack same-size images into a float32 NCHW tensor: `(v * scale - mean[c]) / std[c]`.
 * RGBA images give the 3 RGB channels, grey images 1. With the default scale this equals
 * torchvision's `Normalize(mean, std)(ToTensor()(img))` bit for bit: each step is rounded to
 * float32 as torch rounds it (`v / 255`, then `- mean`, then `/ std`).
 */
export function imagesToTensor(images: readonly AnyImage[], options: TensorOptions): Tensor {
  if (images.length === 0) throw new RangeError("Cannot make a tensor: no images given");
  const { width, height } = images[0];
  const channels = isGray(images[0]) ? 1 : 3;
  const { mean, std } = options;
  const scale = options.scale ?? 1 / 255;
  if (mean.length !== channels || std.length !== channels) {
    throw new RangeError(
      `Cannot make a tensor: mean has ${mean.length} and std ${std.length} values, the images have ${channels} channel(s)`,
    );
  }
  // One float32 table per channel: 256 entries replace per-pixel arithmetic.
  const f = Math.fround;
  const luts = mean.map((m, c) => {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      const x = scale === 1 / 255 ? f(v / 255) : f(v * scale);
      lut[v] = f(f(x - f(m)) / f(std[c]));
    }
    return lut;
  });
  const plane = width * height;
  const out = new Float32Array(images.length * channels * plane);
  images.forEach((image, n) => {
    if (image.width !== width || image.height !== height || isGray(image) !== (channels === 1)) {
      throw new RangeError(
        `Cannot make a tensor: image ${n} is ${image.width}x${image.height}${
          isGray(image) ? " grey" : ""
        }, image 0 is ${width}x${height}${channels === 1 ? " grey" : ""}`,
      );
    }
    const step = channels === 1 ? 1 : 4;
    for (let c = 0; c < channels; c++) {
      const lut = luts[c];
      const base = (n * channels + c) * plane;
      for (let i = 0; i < plane; i++) out[base + i] = lut[image.data[i * step + c]];
    }
  });
  return tensor(out, [images.length, channels, height, width], "NCHW");
}
