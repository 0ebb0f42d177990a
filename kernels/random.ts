/**
 * Seeded random numbers (xoshiro128**), so every stochastic method is reproducible from one seed
 * on every runtime.
 *
 * @module
 */

/** A seeded generator of uniform and normal variates. */
export class Random {
  #s = new Uint32Array(4);
  #spare: number | undefined;

  /** Seed the generator (splitmix32 expands the seed into the state). */
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform number in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A standard normal number (Box–Muller, using both variates). */
  normal(): number {
    if (this.#spare !== undefined) {
      const v = this.#spare;
      this.#spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * Fill `out` with normal variates of standard deviation `sigma`, added to `options.mean` (a
   * per-element mean, same length) when given. The stream is exactly that of calling
   * {@linkcode Random.normal} once per element, and `out[i] = mean[i] + normal() · sigma` rounds
   * as those two float32 steps would.
   */
  fillNormal(
    out: Float32Array,
    sigma = 1,
    options: { mean?: Float32Array } = {},
  ): Float32Array {
    const mean = options.mean;
    const n = out.length;
    if (mean && mean.length < n) {
      throw new RangeError(
        `Cannot add noise: mean has ${mean.length} values, expected ${n} (one per output)`,
      );
    }
    let i = 0;
    if (n > 0 && this.#spare !== undefined) {
      out[0] = mean ? Math.fround(this.#spare * sigma) + mean[0] : this.#spare * sigma;
      this.#spare = undefined;
      i = 1;
    }
    // xoshiro128** and Box–Muller inlined on local state: the same arithmetic as nextUint32 and
    // normal, two variates per pass, without the spare's branch.
    const s = this.#s;
    let s0 = s[0] | 0, s1 = s[1] | 0, s2 = s[2] | 0, s3 = s[3] | 0;
    let spare: number | undefined;
    while (i < n) {
      let u = 0, v = 0;
      do {
        const x = Math.imul(s1, 5);
        u = (Math.imul((x << 7) | (x >>> 25), 9) >>> 0) / 4294967296;
        const t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = (s3 << 11) | (s3 >>> 21);
      } while (u === 0);
      {
        const x = Math.imul(s1, 5);
        v = (Math.imul((x << 7) | (x >>> 25), 9) >>> 0) / 4294967296;
        const t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = (s3 << 11) | (s3 >>> 21);
      }
      const r = Math.sqrt(-2 * Math.log(u));
      const a = r * Math.cos(2 * Math.PI * v), b = r * Math.sin(2 * Math.PI * v);
      if (mean) {
        out[i] = Math.fround(a * sigma) + mean[i];
        if (i + 1 < n) out[i + 1] = Math.fround(b * sigma) + mean[i + 1];
        else spare = b;
      } else {
        out[i] = a * sigma;
        if (i + 1 < n) out[i + 1] = b * sigma;
        else spare = b;
      }
      i += 2;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    if (spare !== undefined) this.#spare = spare;
    return out;
  }

  /** Fill `out` with uniform variates in [lo, hi). */
  fillUniform(out: Float32Array, lo = 0, hi = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * this.uniform();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
