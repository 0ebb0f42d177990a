/**
 * Complex discrete Fourier transforms of any length: a mixed-radix Cooley–Tukey recursion over the
 * length's prime factors (224 = 2⁵·7 needs no power-of-two padding). Plans are cached per length.
 *
 * Conventions as numpy: `fft` computes X[k] = Σ x[n] e^{−2πikn/N} and `ifft` the unnormalized
 * inverse Σ X[k] e^{+2πikn/N} (divide by N yourself), in place on split real/imaginary arrays.
 *
 * @module
 */

interface Plan {
  readonly n: number;
  readonly factors: readonly number[];
  readonly cos: Float64Array;
  readonly sin: Float64Array;
  readonly scratchRe: Float64Array;
  readonly scratchIm: Float64Array;
  readonly outRe: Float64Array;
  readonly outIm: Float64Array;
}

const plans = new Map<number, Plan>();

function factorize(n: number): number[] {
  const out: number[] = [];
  for (const p of [4, 2, 3, 5, 7]) {
    while (n % p === 0) {
      out.push(p);
      n /= p;
    }
  }
  for (let p = 11; n > 1; p += 2) {
    while (n % p === 0) {
      out.push(p);
      n /= p;
    }
    if (p * p > n && n > 1) {
      out.push(n);
      break;
    }
  }
  return out;
}

function plan(n: number): Plan {
  let p = plans.get(n);
  if (!p) {
    const cos = new Float64Array(n), sin = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      cos[k] = Math.cos((2 * Math.PI * k) / n);
      sin[k] = Math.sin((2 * Math.PI * k) / n);
    }
    p = {
      n,
      factors: factorize(n),
      cos,
      sin,
      scratchRe: new Float64Array(n),
      scratchIm: new Float64Array(n),
      outRe: new Float64Array(n),
      outIm: new Float64Array(n),
    };
    plans.set(n, p);
  }
  return p;
}

/**
 * Recursive decimation in time: `len` outputs at `out[o…]` from inputs `inp[i + j·stride]`.
 * `sign` is −1 (forward) or +1 (inverse); twiddles index the full-length table by `step`.
 */
function recurse(
  pl: Plan,
  inRe: Float64Array,
  inIm: Float64Array,
  i0: number,
  stride: number,
  o0: number,
  len: number,
  level: number,
  sign: number,
): void {
  const outRe = pl.outRe, outIm = pl.outIm;
  if (len === 1) {
    outRe[o0] = inRe[i0];
    outIm[o0] = inIm[i0];
    return;
  }
  const p = pl.factors[level];
  const m = len / p;
  // Sub-transform q of length m covers inputs q, q+p, q+2p, … and lands at out[o0 + q·m …].
  for (let q = 0; q < p; q++) {
    recurse(pl, inRe, inIm, i0 + q * stride, stride * p, o0 + q * m, m, level + 1, sign);
  }
  const step = pl.n / len;
  if (p === 2) {
    for (let k = 0; k < m; k++) {
      const c = pl.cos[k * step], s = sign * pl.sin[k * step];
      const a = o0 + k, b = a + m;
      const bRe = outRe[b] * c - outIm[b] * s, bIm = outRe[b] * s + outIm[b] * c;
      outRe[b] = outRe[a] - bRe;
      outIm[b] = outIm[a] - bIm;
      outRe[a] += bRe;
      outIm[a] += bIm;
    }
    return;
  }
  if (p === 4) {
    for (let k = 0; k < m; k++) {
      const i0 = o0 + k, i1 = i0 + m, i2 = i1 + m, i3 = i2 + m;
      const c1 = pl.cos[k * step], s1 = sign * pl.sin[k * step];
      const c2 = pl.cos[2 * k * step], s2 = sign * pl.sin[2 * k * step];
      const c3 = pl.cos[3 * k * step], s3 = sign * pl.sin[3 * k * step];
      const aRe = outRe[i0], aIm = outIm[i0];
      const bRe = outRe[i1] * c1 - outIm[i1] * s1, bIm = outRe[i1] * s1 + outIm[i1] * c1;
      const cRe = outRe[i2] * c2 - outIm[i2] * s2, cIm = outRe[i2] * s2 + outIm[i2] * c2;
      const dRe = outRe[i3] * c3 - outIm[i3] * s3, dIm = outRe[i3] * s3 + outIm[i3] * c3;
      const t0Re = aRe + cRe, t0Im = aIm + cIm, t1Re = aRe - cRe, t1Im = aIm - cIm;
      const t2Re = bRe + dRe, t2Im = bIm + dIm;
      // (b − d)·(sign·i): the quarter-turn twiddle of the length-4 DFT.
      const t3Re = -sign * (bIm - dIm), t3Im = sign * (bRe - dRe);
      outRe[i0] = t0Re + t2Re;
      outIm[i0] = t0Im + t2Im;
      outRe[i1] = t1Re + t3Re;
      outIm[i1] = t1Im + t3Im;
      outRe[i2] = t0Re - t2Re;
      outIm[i2] = t0Im - t2Im;
      outRe[i3] = t1Re - t3Re;
      outIm[i3] = t1Im - t3Im;
    }
    return;
  }
  const sRe = pl.scratchRe, sIm = pl.scratchIm;
  for (let k = 0; k < m; k++) {
    // Twiddled sub-results for this k, then a length-p DFT across them.
    for (let q = 0; q < p; q++) {
      const idx = (q * k * step) % pl.n;
      const c = pl.cos[idx], s = sign * pl.sin[idx];
      const re = outRe[o0 + q * m + k], im = outIm[o0 + q * m + k];
      sRe[q] = re * c - im * s;
      sIm[q] = re * s + im * c;
    }
    for (let r = 0; r < p; r++) {
      let accRe = 0, accIm = 0;
      for (let q = 0; q < p; q++) {
        const idx = ((q * r) % p) * m * step;
        const c = pl.cos[idx], s = sign * pl.sin[idx];
        accRe += sRe[q] * c - sIm[q] * s;
        accIm += sRe[q] * s + sIm[q] * c;
      }
      sRe[p + r] = accRe;
      sIm[p + r] = accIm;
    }
    for (let r = 0; r < p; r++) {
      outRe[o0 + r * m + k] = sRe[p + r];
      outIm[o0 + r * m + k] = sIm[p + r];
    }
  }
}

function transform(re: Float64Array, im: Float64Array, sign: number): void {
  const n = re.length;
  if (im.length !== n) {
    throw new RangeError(`Cannot transform: real length ${n} differs from imaginary ${im.length}`);
  }
  if (n <= 1) return;
  const pl = plan(n);
  const maxP = Math.max(...pl.factors);
  if (pl.scratchRe.length < 2 * maxP) {
    // Large prime factors need room for the length-p butterflies.
    const bigger = {
      ...pl,
      scratchRe: new Float64Array(2 * maxP),
      scratchIm: new Float64Array(2 * maxP),
    };
    plans.set(n, bigger);
    return transform(re, im, sign);
  }
  recurse(pl, re, im, 0, 1, 0, n, 0, sign);
  re.set(pl.outRe);
  im.set(pl.outIm);
}

/** In-place forward DFT: X[k] = Σₙ x[n] e^{−2πikn/N}. */
export function fft(re: Float64Array, im: Float64Array): void {
  transform(re, im, -1);
}

/** In-place unnormalized inverse DFT: x[n] = Σₖ X[k] e^{+2πikn/N} (no 1/N). */
export function ifft(re: Float64Array, im: Float64Array): void {
  transform(re, im, 1);
}
