/**
 * Quickshift superpixels (Vedaldi & Soatto 2008, "Quick Shift and Kernel Methods for Mode
 * Seeking"), following scikit-image 0.19's `quickshift` (the segmenter LIME uses) step by step:
 * the RGB image goes to CIE Lab (D65), is scaled by `ratio`, a Parzen density with a Gaussian
 * kernel of width `kernelSize` over (Lab·ratio, row, col) is estimated in a window of
 * ±ceil(3·kernelSize) pixels, tiny seeded noise breaks ties, and each pixel links to the nearest
 * pixel of higher density within the window unless that is farther than `maxDist`. The trees'
 * roots are the segments, numbered in raster order of their roots. Web-standard only.
 *
 * @module
 */
import { Random } from "./random.ts";

/** An RGB image as segmenters take it: `height·width·3` values in [0, 1], row-major HWC. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** Interleaved RGB in [0, 1]. */
  readonly data: Float32Array | Float64Array;
}

/** A segmentation: one label per pixel, labels 0…count−1. */
export interface Segmentation {
  readonly width: number;
  readonly height: number;
  /** Row-major labels. */
  readonly labels: Int32Array;
  /** Number of segments. */
  readonly count: number;
}

const XYZ_FROM_RGB = [
  [0.412453, 0.35758, 0.180423],
  [0.212671, 0.71516, 0.072169],
  [0.019334, 0.119193, 0.950227],
];
const D65 = [0.95047, 1, 1.08883];

/**
 * CIE Lab of an sRGB image in [0, 1] (D65, 2° observer), equal to scikit-image's `rgb2lab`;
 * returns interleaved L, a, b per pixel.
 */
export function rgbToLab(image: RgbImage): Float64Array {
  const n = image.width * image.height;
  const out = new Float64Array(n * 3);
  const f = (t: number) => t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116;
  const lin = (v: number) => v > 0.04045 ? Math.pow((v + 0.055) / 1.055, 2.4) : v / 12.92;
  for (let p = 0; p < n; p++) {
    const r = lin(image.data[3 * p]),
      g = lin(image.data[3 * p + 1]),
      b = lin(image.data[3 * p + 2]);
    const xyz = XYZ_FROM_RGB.map((row, i) => (row[0] * r + row[1] * g + row[2] * b) / D65[i]);
    const fx = f(xyz[0]), fy = f(xyz[1]), fz = f(xyz[2]);
    out[3 * p] = 116 * fy - 16;
    out[3 * p + 1] = 500 * (fx - fy);
    out[3 * p + 2] = 200 * (fy - fz);
  }
  return out;
}

/** Options of {@linkcode quickshift}; the defaults are LIME's. */
export interface QuickshiftOptions {
  /** Width of the Gaussian density kernel (LIME: 4). */
  readonly kernelSize?: number;
  /** Links longer than this are cut (LIME: 200). */
  readonly maxDist?: number;
  /** Weight of colour against position (LIME: 0.2). */
  readonly ratio?: number;
  /** Seed of the tie-breaking noise. */
  readonly seed?: number;
}

/** Segment an RGB image by quickshift, as `skimage.segmentation.quickshift` does. */
export function quickshift(image: RgbImage, options: QuickshiftOptions = {}): Segmentation {
  const kernelSize = options.kernelSize ?? 4;
  const maxDist = options.maxDist ?? 200;
  const ratio = options.ratio ?? 0.2;
  if (!(kernelSize >= 1)) {
    throw new Error(`Cannot run quickshift: kernel size is ${kernelSize}, expected at least 1`);
  }
  const { width: w, height: h } = image;
  const n = w * h;
  const lab = rgbToLab(image);
  const l = new Float64Array(n), a = new Float64Array(n), b = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    l[p] = lab[3 * p] * ratio;
    a[p] = lab[3 * p + 1] * ratio;
    b[p] = lab[3 * p + 2] * ratio;
  }
  const inv = -0.5 / (kernelSize * kernelSize);
  const kw = Math.ceil(3 * kernelSize);
  const density = new Float64Array(n);
  // Same scale as skimage's noise (σ = 1e-5): it only breaks ties between equal densities.
  const random = new Random(options.seed ?? 42);
  for (let p = 0; p < n; p++) density[p] = random.normal() * 1e-5;
  // The kernel is symmetric, so each pair is evaluated once and credited to both pixels.
  const spatial = new Float64Array((kw + 1) * (2 * kw + 1));
  for (let dy = 0; dy <= kw; dy++) {
    for (let dx = -kw; dx <= kw; dx++) spatial[dy * (2 * kw + 1) + dx + kw] = dy * dy + dx * dx;
  }
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const p = r * w + c;
      const lp = l[p], ap = a[p], bp = b[p];
      let self = 1; // exp(0) for the pixel itself
      // The rest of row r to the right, then rows below within the window.
      for (let dy = 0; dy <= kw && r + dy < h; dy++) {
        const c0 = dy === 0 ? c + 1 : Math.max(c - kw, 0);
        const c1 = Math.min(c + kw + 1, w);
        const rowBase = (r + dy) * w;
        const sBase = dy * (2 * kw + 1) + kw - c;
        for (let cc = c0; cc < c1; cc++) {
          const q = rowBase + cc;
          const d0 = lp - l[q], d1 = ap - a[q], d2 = bp - b[q];
          const e = Math.exp((d0 * d0 + d1 * d1 + d2 * d2 + spatial[sBase + cc]) * inv);
          self += e;
          density[q] += e;
        }
      }
      density[p] += self;
    }
  }
  const parent = new Int32Array(n);
  for (let r = 0; r < h; r++) {
    const r0 = Math.max(r - kw, 0), r1 = Math.min(r + kw + 1, h);
    for (let c = 0; c < w; c++) {
      const p = r * w + c;
      const c0 = Math.max(c - kw, 0), c1 = Math.min(c + kw + 1, w);
      const dp = density[p], lp = l[p], ap = a[p], bp = b[p];
      let closest = Infinity;
      let best = p;
      for (let rr = r0; rr < r1; rr++) {
        const dr = (r - rr) * (r - rr);
        for (let cc = c0; cc < c1; cc++) {
          const q = rr * w + cc;
          if (density[q] > dp) {
            const d0 = lp - l[q], d1 = ap - a[q], d2 = bp - b[q];
            const dist = d0 * d0 + d1 * d1 + d2 * d2 + dr + (c - cc) * (c - cc);
            if (dist < closest) {
              closest = dist;
              best = q;
            }
          }
        }
      }
      parent[p] = Math.sqrt(closest) > maxDist ? p : best;
    }
  }
  return rootsToLabels(parent, w, h);
}

/** Label each pixel by the root of its tree; segments are numbered by ascending root index. */
function rootsToLabels(parent: Int32Array, width: number, height: number): Segmentation {
  const n = parent.length;
  const root = new Int32Array(n);
  for (let p = 0; p < n; p++) {
    let q = p;
    while (parent[q] !== q) q = parent[q];
    root[p] = q;
  }
  const id = new Int32Array(n).fill(-1);
  let count = 0;
  for (let p = 0; p < n; p++) if (root[p] === p) id[p] = count++;
  const labels = new Int32Array(n);
  for (let p = 0; p < n; p++) labels[p] = id[root[p]];
  return { width, height, labels, count };
}
