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

/** Linear interpolation taps along one axis: output i = src[lo[i]]·(1 − frac[i]) + src[hi[i]]·frac[i]. */
export interface Taps {
  /** First source index of each output index. */
  readonly lo: Int32Array;
  /** Second source index. */
  readonly hi: Int32Array;
  /** Weight of the second source index. */
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

// Taps per (input, output, alignment): score-cam and RISE resize thousands of planes alike.
const tapCache = new Map<string, Taps>();

function cachedTaps(inSize: number, outSize: number, alignCorners: boolean): Taps {
  const key = `${inSize}/${outSize}/${alignCorners}`;
  let taps = tapCache.get(key);
  if (!taps) {
    if (tapCache.size > 64) tapCache.clear();
    tapCache.set(key, taps = linearTaps(inSize, outSize, alignCorners));
  }
  return taps;
}

// Two horizontally interpolated source rows, reused across calls.
let rowA = new Float64Array(0), rowB = new Float64Array(0);

function interpolateRow(
  src: Float32Array | Uint8Array,
  into: Float64Array,
  options: { r: number; xs: Taps },
) {
  const { r, xs } = options;
  const { lo, hi, frac } = xs;
  for (let x = 0; x < into.length; x++) {
    const fx = frac[x];
    into[x] = src[r + lo[x]] * (1 - fx) + src[r + hi[x]] * fx;
  }
}

/** Options of {@linkcode bilinearPlane}. */
export interface PlaneOptions extends BilinearOptions {
  /** Input `[h, w]`. */
  readonly from: Size;
  /** Output `[height, width]`. */
  readonly to: Size;
}

/**
 * Resize one `h`×`w` plane `src` into `out` (`height·width` values) bilinearly, exactly as
 * {@linkcode upsampleBilinear} does for each plane; no allocation, for callers that resize many
 * planes into one buffer.
 */
export function bilinearPlane(src: Float32Array, out: Float32Array, options: PlaneOptions): void {
  const [ih, iw] = options.from, [oh, ow] = options.to;
  const align = options.alignCorners ?? false;
  bilinearSeparable(src, out, {
    ys: cachedTaps(ih, oh, align),
    xs: cachedTaps(iw, ow, align),
    width: iw,
  });
}

/**
 * `out[y·W + x]` = bilinear blend of the source plane `src` (row length `width`) at taps `ys[y]`,
 * `xs[x]`: top = src[lo_y, lo_x]·(1 − fx) + src[lo_y, hi_x]·fx, likewise bottom, then
 * top·(1 − fy) + bottom·fy, all in float64 — bit for bit the direct four-tap formula, but each
 * source row is interpolated along x once per run of output rows that use it.
 */
export function bilinearSeparable(
  src: Float32Array | Uint8Array,
  out: Float32Array,
  options: { ys: Taps; xs: Taps; width: number },
): void {
  const { ys, xs, width } = options;
  const oh = ys.lo.length, ow = xs.lo.length;
  if (rowA.length !== ow) {
    rowA = new Float64Array(ow);
    rowB = new Float64Array(ow);
  }
  // Two row buffers: for monotone taps (resizing) every source row is interpolated once; any
  // other order is still exact, only with more row work.
  let a = rowA, b = rowB, aRow = -1, bRow = -1;
  for (let y = 0, o = 0; y < oh; y++) {
    const lo = ys.lo[y], hi = ys.hi[y], fy = ys.frac[y];
    if (lo !== aRow) {
      if (lo === bRow) {
        [a, b, aRow, bRow] = [b, a, bRow, aRow];
      } else {
        interpolateRow(src, a, { r: lo * width, xs });
        aRow = lo;
      }
    }
    if (hi !== aRow && hi !== bRow) {
      interpolateRow(src, b, { r: hi * width, xs });
      bRow = hi;
    }
    const top = a, bottom = hi === aRow ? a : b;
    for (let x = 0; x < ow; x++) out[o++] = top[x] * (1 - fy) + bottom[x] * fy;
  }
  rowA = a;
  rowB = b;
}

/**
 * Resize an `[N,C,h,w]` CPU tensor to `[N,C,height,width]` by bilinear interpolation, equal to
 * `F.interpolate(x, size=(height, width), mode="bilinear", align_corners=...)` (without
 * antialias, so downsizing samples rather than averages).
 */
export function upsampleBilinear(t: Tensor, size: Size, options: BilinearOptions = {}): Tensor {
  const [planes, ih, iw] = checkArgs(t, size, "bilinear");
  const [oh, ow] = size;
  const out = new Float32Array(planes * oh * ow);
  const plane = { from: [ih, iw] as const, to: size, alignCorners: options.alignCorners };
  for (let p = 0; p < planes; p++) {
    bilinearPlane(
      t.data.subarray(p * ih * iw, (p + 1) * ih * iw),
      out.subarray(p * oh * ow, (p + 1) * oh * ow),
      plane,
    );
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
