/**
 * Complex discrete Fourier transforms of any length: an iterative mixed-radix Stockham
 * (self-sorting) Cooley–Tukey transform over the length's prime factors (224 = 4²·2·7 needs no
 * power-of-two padding), with radix-2, -3 and -4 butterflies, a generic odd-prime one and
 * precomputed twiddles. Plans are cached per length.
 *
 * Conventions as numpy: `fft` computes X[k] = Σ x[n] e^{−2πikn/N} and `ifft` the unnormalized
 * inverse Σ X[k] e^{+2πikn/N} (divide by N yourself), in place on split real/imaginary arrays.
 * {@linkcode fftBatch} runs many transforms at once on `[n, batch]` data: every butterfly then
 * runs as a loop over the contiguous batch axis, which amortizes index and twiddle work.
 *
 * @module
 */

/** One Stockham pass: radix `p`, `l1` transforms done so far, `ido` = n / (l1·p). */
interface Pass {
  readonly p: number;
  readonly l1: number;
  readonly ido: number;
  /** cos and sin of 2π·u·l1·i/n at `(u − 1)·ido + i`, u = 1…p−1, i = 0…ido−1. */
  readonly cos: Float64Array;
  readonly sin: Float64Array;
  /** cos and sin of 2π·(u·j mod p)/p at `u·p + j` (odd-prime passes only). */
  readonly rootCos: Float64Array;
  readonly rootSin: Float64Array;
}

interface Plan {
  readonly n: number;
  readonly passes: readonly Pass[];
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
  let pl = plans.get(n);
  if (pl) return pl;
  const passes: Pass[] = [];
  let l1 = 1;
  for (const p of factorize(n)) {
    const ido = n / (l1 * p);
    const cos = new Float64Array((p - 1) * ido), sin = new Float64Array((p - 1) * ido);
    for (let u = 1; u < p; u++) {
      for (let i = 0; i < ido; i++) {
        const a = (2 * Math.PI * ((u * l1 * i) % n)) / n;
        cos[(u - 1) * ido + i] = Math.cos(a);
        sin[(u - 1) * ido + i] = Math.sin(a);
      }
    }
    const odd = p !== 2 && p !== 3 && p !== 4;
    const rootCos = new Float64Array(odd ? p * p : 0), rootSin = new Float64Array(odd ? p * p : 0);
    if (odd) {
      for (let u = 0; u < p; u++) {
        for (let j = 0; j < p; j++) {
          rootCos[u * p + j] = Math.cos((2 * Math.PI * ((u * j) % p)) / p);
          rootSin[u * p + j] = Math.sin((2 * Math.PI * ((u * j) % p)) / p);
        }
      }
    }
    passes.push({ p, l1, ido, cos, sin, rootCos, rootSin });
    l1 *= p;
  }
  plans.set(n, pl = { n, passes });
  return pl;
}

// Ping-pong buffers of the Stockham passes, grown on demand and shared by all plans.
let bufRe = new Float64Array(0), bufIm = new Float64Array(0);

/**
 * One pass from `x` to `y` (pocketfft's `passN` layout): input element `i + ido·(j + p·k)`, output
 * element `i + ido·(k + l1·u)` gets the u-th length-p DFT output times the twiddle
 * e^{sign·2πi·u·l1·i/n}. Every element is a run of `bs` contiguous batch values.
 */
function pass(
  ps: Pass,
  bs: number,
  sign: number,
  x: [Float64Array, Float64Array],
  y: [Float64Array, Float64Array],
): void {
  const { p, l1, ido } = ps;
  const [xr, xi] = x, [yr, yi] = y;
  const tc = ps.cos, ts = ps.sin;
  const js = ido * bs, us = ido * l1 * bs;
  if (p === 4) {
    for (let k = 0; k < l1; k++) {
      for (let i = 0; i < ido; i++) {
        const w1r = tc[i], w1i = sign * ts[i];
        const w2r = tc[ido + i], w2i = sign * ts[ido + i];
        const w3r = tc[2 * ido + i], w3i = sign * ts[2 * ido + i];
        const a0 = (i + ido * 4 * k) * bs, o0 = (i + ido * k) * bs;
        for (let b = 0; b < bs; b++) {
          const a = a0 + b, o = o0 + b;
          const x0r = xr[a], x0i = xi[a], x1r = xr[a + js], x1i = xi[a + js];
          const x2r = xr[a + 2 * js], x2i = xi[a + 2 * js];
          const x3r = xr[a + 3 * js], x3i = xi[a + 3 * js];
          const t0r = x0r + x2r, t0i = x0i + x2i, t1r = x0r - x2r, t1i = x0i - x2i;
          const t2r = x1r + x3r, t2i = x1i + x3i;
          // (x1 − x3)·(sign·i): the quarter-turn root of the length-4 DFT.
          const t3r = -sign * (x1i - x3i), t3i = sign * (x1r - x3r);
          yr[o] = t0r + t2r;
          yi[o] = t0i + t2i;
          const y1r = t1r + t3r, y1i = t1i + t3i;
          const y2r = t0r - t2r, y2i = t0i - t2i;
          const y3r = t1r - t3r, y3i = t1i - t3i;
          yr[o + us] = y1r * w1r - y1i * w1i;
          yi[o + us] = y1r * w1i + y1i * w1r;
          yr[o + 2 * us] = y2r * w2r - y2i * w2i;
          yi[o + 2 * us] = y2r * w2i + y2i * w2r;
          yr[o + 3 * us] = y3r * w3r - y3i * w3i;
          yi[o + 3 * us] = y3r * w3i + y3i * w3r;
        }
      }
    }
  } else if (p === 2) {
    for (let k = 0; k < l1; k++) {
      for (let i = 0; i < ido; i++) {
        const wr = tc[i], wi = sign * ts[i];
        const a0 = (i + ido * 2 * k) * bs, o0 = (i + ido * k) * bs;
        for (let b = 0; b < bs; b++) {
          const a = a0 + b, o = o0 + b;
          const x0r = xr[a], x0i = xi[a], x1r = xr[a + js], x1i = xi[a + js];
          yr[o] = x0r + x1r;
          yi[o] = x0i + x1i;
          const dr = x0r - x1r, di = x0i - x1i;
          yr[o + us] = dr * wr - di * wi;
          yi[o + us] = dr * wi + di * wr;
        }
      }
    }
  } else if (p === 3) {
    const h = sign * Math.sqrt(3) / 2;
    for (let k = 0; k < l1; k++) {
      for (let i = 0; i < ido; i++) {
        const w1r = tc[i], w1i = sign * ts[i];
        const w2r = tc[ido + i], w2i = sign * ts[ido + i];
        const a0 = (i + ido * 3 * k) * bs, o0 = (i + ido * k) * bs;
        for (let b = 0; b < bs; b++) {
          const a = a0 + b, o = o0 + b;
          const x0r = xr[a], x0i = xi[a], x1r = xr[a + js], x1i = xi[a + js];
          const x2r = xr[a + 2 * js], x2i = xi[a + 2 * js];
          const sr = x1r + x2r, si = x1i + x2i;
          yr[o] = x0r + sr;
          yi[o] = x0i + si;
          const mr = x0r - 0.5 * sr, mi = x0i - 0.5 * si;
          // ±(sign·√3/2)·i·(x1 − x2)
          const dr = -h * (x1i - x2i), di = h * (x1r - x2r);
          const y1r = mr + dr, y1i = mi + di, y2r = mr - dr, y2i = mi - di;
          yr[o + us] = y1r * w1r - y1i * w1i;
          yi[o + us] = y1r * w1i + y1i * w1r;
          yr[o + 2 * us] = y2r * w2r - y2i * w2i;
          yi[o + 2 * us] = y2r * w2i + y2i * w2r;
        }
      }
    }
  } else if (p === 7) {
    pass7(ps, bs, sign, x, y);
  } else {
    // Odd p: y_u = x₀ + Σⱼ cos(2πuj/p)(xⱼ + x_{p−j}) ± sign·i·Σⱼ sin(2πuj/p)(xⱼ − x_{p−j}).
    const half = (p - 1) >> 1, rc = ps.rootCos, rs = ps.rootSin;
    for (let k = 0; k < l1; k++) {
      for (let i = 0; i < ido; i++) {
        const a0 = (i + ido * p * k) * bs, o0 = (i + ido * k) * bs;
        for (let b = 0; b < bs; b++) {
          const a = a0 + b, o = o0 + b;
          const x0r = xr[a], x0i = xi[a];
          let s0r = x0r, s0i = x0i;
          for (let j = 1; j < p; j++) {
            s0r += xr[a + j * js];
            s0i += xi[a + j * js];
          }
          yr[o] = s0r;
          yi[o] = s0i;
          for (let u = 1; u <= half; u++) {
            let ar = x0r, ai = x0i, br = 0, bi = 0;
            for (let j = 1; j <= half; j++) {
              const q = a + j * js, m = a + (p - j) * js;
              const c = rc[u * p + j], s = rs[u * p + j];
              ar += c * (xr[q] + xr[m]);
              ai += c * (xi[q] + xi[m]);
              br += s * (xr[q] - xr[m]);
              bi += s * (xi[q] - xi[m]);
            }
            const yur = ar - sign * bi, yui = ai + sign * br;
            const ymr = ar + sign * bi, ymi = ai - sign * br;
            const tu = (u - 1) * ido + i, tm = (p - u - 1) * ido + i;
            const wur = tc[tu], wui = sign * ts[tu], wmr = tc[tm], wmi = sign * ts[tm];
            yr[o + u * us] = yur * wur - yui * wui;
            yi[o + u * us] = yur * wui + yui * wur;
            yr[o + (p - u) * us] = ymr * wmr - ymi * wmi;
            yi[o + (p - u) * us] = ymr * wmi + ymi * wmr;
          }
        }
      }
    }
  }
}

/**
 * The odd-prime pass unrolled for p = 7 (224 = 4²·2·7): the three sums and differences of mirrored
 * inputs are formed once, and the roots of unity sit in locals.
 */
function pass7(
  ps: Pass,
  bs: number,
  sign: number,
  x: [Float64Array, Float64Array],
  y: [Float64Array, Float64Array],
): void {
  const { l1, ido } = ps;
  const [xr, xi] = x, [yr, yi] = y;
  const tc = ps.cos, ts = ps.sin, rc = ps.rootCos, rs = ps.rootSin;
  const js = ido * bs, us = ido * l1 * bs;
  const c11 = rc[8], c12 = rc[9], c13 = rc[10], c21 = rc[15], c22 = rc[16], c23 = rc[17];
  const c31 = rc[22], c32 = rc[23], c33 = rc[24];
  const s11 = sign * rs[8], s12 = sign * rs[9], s13 = sign * rs[10];
  const s21 = sign * rs[15], s22 = sign * rs[16], s23 = sign * rs[17];
  const s31 = sign * rs[22], s32 = sign * rs[23], s33 = sign * rs[24];
  for (let k = 0; k < l1; k++) {
    for (let i = 0; i < ido; i++) {
      const w1r = tc[i], w1i = sign * ts[i], w2r = tc[ido + i], w2i = sign * ts[ido + i];
      const w3r = tc[2 * ido + i], w3i = sign * ts[2 * ido + i];
      const w4r = tc[3 * ido + i], w4i = sign * ts[3 * ido + i];
      const w5r = tc[4 * ido + i], w5i = sign * ts[4 * ido + i];
      const w6r = tc[5 * ido + i], w6i = sign * ts[5 * ido + i];
      const a0 = (i + ido * 7 * k) * bs, o0 = (i + ido * k) * bs;
      for (let b = 0; b < bs; b++) {
        const a = a0 + b, o = o0 + b;
        const x0r = xr[a], x0i = xi[a];
        const x1r = xr[a + js], x1i = xi[a + js], x6r = xr[a + 6 * js], x6i = xi[a + 6 * js];
        const x2r = xr[a + 2 * js], x2i = xi[a + 2 * js];
        const x5r = xr[a + 5 * js], x5i = xi[a + 5 * js];
        const x3r = xr[a + 3 * js], x3i = xi[a + 3 * js];
        const x4r = xr[a + 4 * js], x4i = xi[a + 4 * js];
        const t1r = x1r + x6r, t1i = x1i + x6i, d1r = x1r - x6r, d1i = x1i - x6i;
        const t2r = x2r + x5r, t2i = x2i + x5i, d2r = x2r - x5r, d2i = x2i - x5i;
        const t3r = x3r + x4r, t3i = x3i + x4i, d3r = x3r - x4r, d3i = x3i - x4i;
        yr[o] = x0r + t1r + t2r + t3r;
        yi[o] = x0i + t1i + t2i + t3i;
        // u = 1, 2, 3 and their mirrors 6, 5, 4: A ± i·B with B = sign·Σ sin·d.
        let ar = x0r + c11 * t1r + c12 * t2r + c13 * t3r;
        let ai = x0i + c11 * t1i + c12 * t2i + c13 * t3i;
        let br = s11 * d1r + s12 * d2r + s13 * d3r, bi = s11 * d1i + s12 * d2i + s13 * d3i;
        let pr = ar - bi, pi = ai + br, mr = ar + bi, mi = ai - br;
        yr[o + us] = pr * w1r - pi * w1i;
        yi[o + us] = pr * w1i + pi * w1r;
        yr[o + 6 * us] = mr * w6r - mi * w6i;
        yi[o + 6 * us] = mr * w6i + mi * w6r;
        ar = x0r + c21 * t1r + c22 * t2r + c23 * t3r;
        ai = x0i + c21 * t1i + c22 * t2i + c23 * t3i;
        br = s21 * d1r + s22 * d2r + s23 * d3r;
        bi = s21 * d1i + s22 * d2i + s23 * d3i;
        pr = ar - bi, pi = ai + br, mr = ar + bi, mi = ai - br;
        yr[o + 2 * us] = pr * w2r - pi * w2i;
        yi[o + 2 * us] = pr * w2i + pi * w2r;
        yr[o + 5 * us] = mr * w5r - mi * w5i;
        yi[o + 5 * us] = mr * w5i + mi * w5r;
        ar = x0r + c31 * t1r + c32 * t2r + c33 * t3r;
        ai = x0i + c31 * t1i + c32 * t2i + c33 * t3i;
        br = s31 * d1r + s32 * d2r + s33 * d3r;
        bi = s31 * d1i + s32 * d2i + s33 * d3i;
        pr = ar - bi, pi = ai + br, mr = ar + bi, mi = ai - br;
        yr[o + 3 * us] = pr * w3r - pi * w3i;
        yi[o + 3 * us] = pr * w3i + pi * w3r;
        yr[o + 4 * us] = mr * w4r - mi * w4i;
        yi[o + 4 * us] = mr * w4i + mi * w4r;
      }
    }
  }
}

/** Options of {@linkcode fftBatch}. */
export interface BatchOptions {
  /** Transform length n (the outer axis). */
  n: number;
  /** Number of transforms (the inner, contiguous axis). */
  batch: number;
  /** Unnormalized inverse (e^{+2πikn/N}) instead of the forward transform. */
  inverse?: boolean;
}

/**
 * In-place DFTs of `batch` sequences of length `n` stored as `[n, batch]`: element `e` of
 * transform `b` is at `e·batch + b` of `re` and `im`.
 */
export function fftBatch(re: Float64Array, im: Float64Array, options: BatchOptions): void {
  const { n, batch } = options;
  const size = n * batch;
  if (re.length < size || im.length < size) {
    throw new RangeError(
      `Cannot transform: arrays hold ${
        Math.min(re.length, im.length)
      } values, expected ${size} (${n}×${batch})`,
    );
  }
  if (n <= 1 || batch === 0) return;
  const pl = plan(n);
  if (bufRe.length < size) {
    bufRe = new Float64Array(size);
    bufIm = new Float64Array(size);
  }
  const sign = options.inverse ? 1 : -1;
  let x: [Float64Array, Float64Array] = [re, im];
  let y: [Float64Array, Float64Array] = [bufRe, bufIm];
  for (const ps of pl.passes) {
    pass(ps, batch, sign, x, y);
    [x, y] = [y, x];
  }
  if (x[0] !== re) {
    re.set(x[0].subarray(0, size));
    im.set(x[1].subarray(0, size));
  }
}

function transform(re: Float64Array, im: Float64Array, inverse: boolean): void {
  if (im.length !== re.length) {
    throw new RangeError(
      `Cannot transform: real length ${re.length} differs from imaginary ${im.length}`,
    );
  }
  fftBatch(re, im, { n: re.length, batch: 1, inverse });
}

/** In-place forward DFT: X[k] = Σₙ x[n] e^{−2πikn/N}. */
export function fft(re: Float64Array, im: Float64Array): void {
  transform(re, im, false);
}

/** In-place unnormalized inverse DFT: x[n] = Σₖ X[k] e^{+2πikn/N} (no 1/N). */
export function ifft(re: Float64Array, im: Float64Array): void {
  transform(re, im, true);
}
