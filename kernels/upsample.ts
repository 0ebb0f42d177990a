/**
 * Resizing of `[N,C,h,w]` maps, equal to `torch.nn.functional.interpolate` in `bilinear` (no
 * antialias) and `nearest` modes, so layer maps line up with the input as in PyTorch code.
 * Web-standard only.
 *
 * @module
 */
import { type Tensor, tensor } from "./tensor.ts";

/** Options of {@linkcode upsampleBilinear}. */
export interface BilinearOptions {
  /**
   * Align the centres of the corner pixels (`align_corners=True`) instead of the corners of the
   * pixel grid (default `false`, PyTorch's and OpenCV's default).
   */
  readonly alignCorners?: boolean;
}

/** Output height and width, `[h, w]`. */
export type Size = readonly [height: number, width: number];

function checkArgs(t: Tensor, size: Size, what: string): [number, number, number] {
  if (t.dims.length !== 4) {
    throw new Error(`Cannot resize map (${what}): it has dims [${t.dims}], expected [N,C,h,w]`);
  }
  if (t.location !== "cpu") {
    throw new Error(`Cannot resize map (${what}): its data is on the GPU, download it first`);
  }
  const [h, w] = size;
  if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) {
    throw new Error(`Cannot resize map (${what}): size is [${size}], expected positive integers`);
  }
  const [, , ih, iw] = t.dims;
  if (ih === 0 || iw === 0) {
    throw new Error(`Cannot resize map (${what}): it has dims [${t.dims}], which hold no pixels`);
  }
  return [t.dims[0] * t.dims[1], ih, iw];
}

interface Taps {
  readonly lo: Int32Array;
  readonly hi: Int32Array;
  readonly frac: Float64Array;
}

// Source taps of each output index along one axis, as in PyTorch's
// `area_pixel_compute_source_index` (negative half-pixel positions clamp to 0).
function linearTaps(inSize: number, outSize: number, alignCorners: boolean): Taps {
  const lo = new Int32Array(outSize), hi = new Int32Array(outSize);
  const frac = new Float64Array(outSize);
  const scale = alignCorners ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const src = alignCorners ? scale * i : Math.max(scale * (i + 0.5) - 0.5, 0);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    lo[i] = i0;
    hi[i] = Math.min(i0 + 1, inSize - 1);
    frac[i] = Math.min(Math.max(src - i0, 0), 1);
  }
  return { lo, hi, frac };
}

/**
 * Resize an `[N,C,h,w]` CPU tensor to `[N,C,height,width]` by bilinear interpolation, equal to
 * `F.interpolate(x, size=(height, width), mode="bilinear", align_corners=...)` (without
 * antialias, so downsizing samples rather than averages).
 */
export function upsampleBilinear(t: Tensor, size: Size, options: BilinearOptions = {}): Tensor {
  const [planes, ih, iw] = checkArgs(t, size, "bilinear");
  const [oh, ow] = size;
  const ys = linearTaps(ih, oh, options.alignCorners ?? false);
  const xs = linearTaps(iw, ow, options.alignCorners ?? false);
  const out = new Float32Array(planes * oh * ow);
  for (let p = 0; p < planes; p++) {
    const src = t.data.subarray(p * ih * iw, (p + 1) * ih * iw);
    let o = p * oh * ow;
    for (let y = 0; y < oh; y++) {
      const r0 = ys.lo[y] * iw, r1 = ys.hi[y] * iw, fy = ys.frac[y];
      for (let x = 0; x < ow; x++) {
        const c0 = xs.lo[x], c1 = xs.hi[x], fx = xs.frac[x];
        const top = src[r0 + c0] * (1 - fx) + src[r0 + c1] * fx;
        const bottom = src[r1 + c0] * (1 - fx) + src[r1 + c1] * fx;
        out[o++] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return tensor(out, [t.dims[0], t.dims[1], oh, ow], t.layout);
}

// PyTorch's legacy `nearest` index: floor(dst * (in / out)), with the scale and the product
// rounded to float32 as its CPU kernel does, so ties at exact multiples pick the same pixel.
function nearestTaps(inSize: number, outSize: number): Int32Array {
  const idx = new Int32Array(outSize);
  const scale = Math.fround(inSize / outSize);
  for (let i = 0; i < outSize; i++) {
    idx[i] = outSize === inSize ? i : Math.min(Math.floor(Math.fround(i * scale)), inSize - 1);
  }
  return idx;
}

/**
 * Resize an `[N,C,h,w]` CPU tensor to `[N,C,height,width]` by nearest-neighbour sampling,
 * equal to `F.interpolate(x, size=(height, width), mode="nearest")`: output pixel `i` copies
 * input pixel `floor(i * in / out)`. Integer factors replicate each pixel into a block.
 */
export function upsampleNearest(t: Tensor, size: Size): Tensor {
  const [planes, ih, iw] = checkArgs(t, size, "nearest");
  const [oh, ow] = size;
  const ys = nearestTaps(ih, oh);
  const xs = nearestTaps(iw, ow);
  const out = new Float32Array(planes * oh * ow);
  for (let p = 0; p < planes; p++) {
    const base = p * ih * iw;
    let o = p * oh * ow;
    for (let y = 0; y < oh; y++) {
      const row = base + ys[y] * iw;
      for (let x = 0; x < ow; x++) out[o++] = t.data[row + xs[x]];
    }
  }
  return tensor(out, [t.dims[0], t.dims[1], oh, ow], t.layout);
}
