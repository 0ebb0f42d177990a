/**
 * SLIC superpixels (Achanta et al. 2012, "SLIC Superpixels Compared to State-of-the-Art
 * Superpixel Methods"), following scikit-image 0.19's `slic` with its defaults: Lab colour scaled
 * by 1/compactness, seeds on a regular grid of ≈`nSegments` cells, k-means restricted to ±2 grid
 * steps around each centre with spatial weight 1/step², then connectivity enforced (segments
 * smaller than half the mean size merge into a neighbour). Web-standard only.
 *
 * @module
 */
import { type RgbImage, rgbToLab, type Segmentation } from "./quickshift.ts";

/** Options of {@linkcode slic}; defaults are scikit-image's. */
export interface SlicOptions {
  /** Approximate number of segments (100). */
  readonly nSegments?: number;
  /** Balance of space against colour; higher gives squarer segments (10). */
  readonly compactness?: number;
  /** k-means iterations (10). */
  readonly maxIterations?: number;
}

/** Grid steps and starts as scikit-image's `regular_grid` picks them for a 2-D image. */
function regularGrid(h: number, w: number, n: number): { starts: number[]; steps: number[] } {
  const dims = [1, h, w];
  const order = [0, 1, 2].sort((i, j) => dims[i] - dims[j]);
  const sorted = order.map((i) => dims[i]);
  let space = h * w;
  if (space <= n) return { starts: [0, 0, 0], steps: [1, 1, 1] };
  const steps = [1, 1, 1].map(() => Math.pow(space / n, 1 / 3));
  if (sorted.some((d, i) => d < steps[i])) {
    for (let dim = 0; dim < 3; dim++) {
      steps[dim] = sorted[dim];
      space = sorted.slice(dim + 1).reduce((s, d) => s * d, 1);
      for (let k = dim + 1; k < 3; k++) steps[k] = Math.pow(space / n, 1 / (3 - dim - 1));
      if (sorted.every((d, i) => d >= steps[i])) break;
    }
  }
  const out = { starts: [0, 0, 0], steps: [1, 1, 1] };
  order.forEach((axis, i) => {
    out.starts[axis] = Math.floor(steps[i] / 2);
    out.steps[axis] = Math.round(steps[i]);
  });
  return out;
}

/** Segment an RGB image by SLIC, as `skimage.segmentation.slic` does with its defaults. */
export function slic(image: RgbImage, options: SlicOptions = {}): Segmentation {
  const { width: w, height: h } = image;
  const n = w * h;
  const ratio = 1 / (options.compactness ?? 10);
  // scikit-image first stretches the image to [0, 1] over all channels, so compactness does not
  // depend on the input's scale.
  let lo = Infinity, hi = -Infinity;
  for (const v of image.data) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const scale = hi > lo ? 1 / (hi - lo) : 1;
  const stretched = { ...image, data: image.data.map((v) => (v - lo) * scale) };
  const lab = rgbToLab(stretched).map((v) => v * ratio);
  const grid = regularGrid(h, w, options.nSegments ?? 100);
  const [, sy, sx] = grid.steps;
  const centres: number[][] = [];
  for (let y = grid.starts[1]; y < h; y += sy) {
    for (let x = grid.starts[2]; x < w; x += sx) centres.push([y, x, 0, 0, 0]);
  }
  const k = centres.length;
  const step = Math.max(...grid.steps);
  const weight = 1 / (step * step);
  const nearest = new Int32Array(n);
  const distance = new Float64Array(n);
  for (let iter = 0; iter < (options.maxIterations ?? 10); iter++) {
    let change = false;
    distance.fill(Infinity);
    for (let s = 0; s < k; s++) {
      const [cy, cx, c0, c1, c2] = centres[s];
      const y0 = Math.trunc(Math.max(cy - 2 * sy, 0)),
        y1 = Math.trunc(Math.min(cy + 2 * sy + 1, h));
      const x0 = Math.trunc(Math.max(cx - 2 * sx, 0)),
        x1 = Math.trunc(Math.min(cx + 2 * sx + 1, w));
      for (let y = y0; y < y1; y++) {
        const dy = (cy - y) * (cy - y);
        for (let x = x0; x < x1; x++) {
          const p = y * w + x;
          const t0 = lab[3 * p] - c0, t1 = lab[3 * p + 1] - c1, t2 = lab[3 * p + 2] - c2;
          const d = (dy + (cx - x) * (cx - x)) * weight + t0 * t0 + t1 * t1 + t2 * t2;
          if (distance[p] > d) {
            nearest[p] = s;
            distance[p] = d;
            change = true;
          }
        }
      }
    }
    if (!change) break;
    const sums = Array.from({ length: k }, () => [0, 0, 0, 0, 0, 0]);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = y * w + x;
        const acc = sums[nearest[p]];
        acc[0] += y;
        acc[1] += x;
        acc[2] += lab[3 * p];
        acc[3] += lab[3 * p + 1];
        acc[4] += lab[3 * p + 2];
        acc[5]++;
      }
    }
    // An emptied centre becomes NaN in scikit-image and never wins again; the same here.
    for (let s = 0; s < k; s++) centres[s] = sums[s].slice(0, 5).map((v) => v / sums[s][5]);
  }
  const size = n / k;
  return enforceConnectivity(nearest, w, h, {
    minSize: Math.trunc(0.5 * size),
    maxSize: Math.trunc(3 * size),
  });
}

/** scikit-image's `_enforce_label_connectivity_cython` in 2-D, labels from 0. */
function enforceConnectivity(
  segments: Int32Array,
  w: number,
  h: number,
  sizes: { minSize: number; maxSize: number },
): Segmentation {
  const n = w * h;
  const out = new Int32Array(n).fill(-1);
  const list = new Int32Array(Math.max(sizes.maxSize, 1));
  const dx = [1, -1, 0, 0], dy = [0, 0, 1, -1];
  let next = 0;
  for (let p = 0; p < n; p++) {
    if (out[p] >= 0) continue;
    let adjacent = next;
    const label = segments[p];
    out[p] = next;
    let size = 1, visited = 0;
    list[0] = p;
    while (visited < size && size < sizes.maxSize) {
      const q = list[visited];
      const qy = Math.floor(q / w), qx = q % w;
      for (let i = 0; i < 4; i++) {
        const yy = qy + dy[i], xx = qx + dx[i];
        if (xx < 0 || xx >= w || yy < 0 || yy >= h) continue;
        const r = yy * w + xx;
        if (segments[r] === label && out[r] === -1) {
          out[r] = next;
          list[size++] = r;
          if (size >= sizes.maxSize) break;
        } else if (out[r] >= 0 && out[r] !== next) {
          adjacent = out[r];
        }
      }
      visited++;
    }
    if (size < sizes.minSize) {
      for (let i = 0; i < size; i++) out[list[i]] = adjacent;
    } else {
      next++;
    }
  }
  return { width: w, height: h, labels: out, count: next };
}
