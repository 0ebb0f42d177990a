/**
 * The fast kernels give the results of their plain definitions: the batched Stockham FFT against
 * a naive DFT and against one transform at a time, the batched three-plane Fourier
 * parameterization against the single-plane `irfft2d`, the inlined normal stream bit for bit
 * against `Random.normal`, the bilinear sampler and resizer bit for bit against tap-by-tap loops.
 */
import assert from "node:assert/strict";
import { fft, fftBatch, ifft } from "../kernels/fft.ts";
import {
  colorMatrix,
  fourierScale,
  imageParameterization,
  irfft2d,
  irfft2dAdjoint,
} from "../kernels/fourier_image.ts";
import { Random } from "../kernels/random.ts";
import { tensor } from "../kernels/tensor.ts";
import {
  type Affine,
  randomAffine,
  sampleAffine,
  sampleAffineAdjoint,
} from "../kernels/transforms.ts";
import { bilinearPlane, bilinearSeparable, upsampleBilinear } from "../kernels/upsample.ts";

function randoms(n: number, seed: number): Float64Array {
  return Float64Array.from(new Random(seed).fillNormal(new Float32Array(n)));
}

function naiveDft(re: Float64Array, im: Float64Array, sign: number): [Float64Array, Float64Array] {
  const n = re.length, outRe = new Float64Array(n), outIm = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) {
      const t = (sign * 2 * Math.PI * ((k * j) % n)) / n;
      outRe[k] += re[j] * Math.cos(t) - im[j] * Math.sin(t);
      outIm[k] += re[j] * Math.sin(t) + im[j] * Math.cos(t);
    }
  }
  return [outRe, outIm];
}

Deno.test("fft: radix-2/3/4/5/7 and generic odd passes match a naive DFT both ways", () => {
  for (const n of [4, 5, 6, 7, 9, 11, 25, 49, 121, 210, 448, 500]) {
    for (const sign of [-1, 1]) {
      const re = randoms(n, n), im = randoms(n, n + 1);
      const [wantRe, wantIm] = naiveDft(re, im, sign);
      const gotRe = re.slice(), gotIm = im.slice();
      (sign < 0 ? fft : ifft)(gotRe, gotIm);
      let err = 0;
      for (let k = 0; k < n; k++) {
        err = Math.max(err, Math.abs(gotRe[k] - wantRe[k]), Math.abs(gotIm[k] - wantIm[k]));
      }
      assert.ok(err < 1e-11 * n, `n=${n} sign=${sign}: error ${err}`);
    }
  }
});

Deno.test("fftBatch equals one transform per column, bit for bit", () => {
  for (const [n, batch] of [[1, 3], [7, 1], [12, 5], [224, 3], [97, 2]]) {
    for (const inverse of [false, true]) {
      const re = randoms(n * batch, n), im = randoms(n * batch, batch);
      const gotRe = re.slice(), gotIm = im.slice();
      fftBatch(gotRe, gotIm, { n, batch, inverse });
      for (let b = 0; b < batch; b++) {
        const colRe = Float64Array.from({ length: n }, (_, e) => re[e * batch + b]);
        const colIm = Float64Array.from({ length: n }, (_, e) => im[e * batch + b]);
        (inverse ? ifft : fft)(colRe, colIm);
        for (let e = 0; e < n; e++) {
          assert.equal(gotRe[e * batch + b], colRe[e], `n=${n} batch=${batch} re[${e},${b}]`);
          assert.equal(gotIm[e * batch + b], colIm[e], `n=${n} batch=${batch} im[${e},${b}]`);
        }
      }
    }
  }
  assert.throws(
    () => fftBatch(new Float64Array(5), new Float64Array(6), { n: 3, batch: 2 }),
    /Cannot transform: arrays hold 5 values, expected 6/,
  );
});

Deno.test("three-plane Fourier parameterization equals the single-plane irfft2d and its adjoint", () => {
  for (const [h, w] of [[7, 9], [6, 5], [16, 12], [1, 4]]) {
    const p = imageParameterization({ h, w, kind: "fourier" });
    const wf = (w % 2 === 0 ? w : w + 1) / 2 + 1, plane = h * wf * 2, hw = h * w;
    assert.equal(p.size, 3 * plane);
    const theta = new Float32Array(randoms(p.size, h * w).map((v) => v * 0.05));
    const rgb = new Float32Array(3 * hw);
    p.forward(theta, rgb);
    const scale = fourierScale(h, w), m = colorMatrix();
    const linear = [0, 1, 2].map((c) => {
      const spec = Float64Array.from(
        { length: plane },
        (_, i) => theta[c * plane + i] * scale[i >> 1],
      );
      const out = new Float64Array(hw);
      irfft2d(spec, out, { h, w });
      return out.map((v) => v / 4);
    });
    for (let c = 0; c < 3; c++) {
      for (let q = 0; q < hw; q++) {
        const t = m[c * 3] * linear[0][q] + m[c * 3 + 1] * linear[1][q] +
          m[c * 3 + 2] * linear[2][q];
        const want = 1 / (1 + Math.exp(-t));
        assert.ok(Math.abs(rgb[c * hw + q] - want) < 1e-6, `${h}x${w} rgb[${c},${q}]`);
      }
    }
    const gRgb = new Float32Array(randoms(3 * hw, 11));
    const gTheta = new Float32Array(p.size);
    p.backward(rgb, gRgb, gTheta);
    for (let j = 0; j < 3; j++) {
      const gLinear = Float64Array.from({ length: hw }, (_, q) => {
        let acc = 0;
        for (let c = 0; c < 3; c++) {
          const s = rgb[c * hw + q];
          acc += m[c * 3 + j] * gRgb[c * hw + q] * s * (1 - s);
        }
        return acc;
      });
      const back = new Float64Array(plane);
      irfft2dAdjoint(gLinear, back, { h, w });
      for (let i = 0; i < plane; i++) {
        const want = (back[i] * scale[i >> 1]) / 4;
        assert.ok(
          Math.abs(gTheta[j * plane + i] - want) < 1e-5 * (1 + Math.abs(want)),
          `${h}x${w} gTheta[${j},${i}]: ${gTheta[j * plane + i]} vs ${want}`,
        );
      }
    }
  }
});

Deno.test("fillNormal is the Random.normal stream bit for bit, with and without a mean", () => {
  // Pinned values: tests/methods_path_test.ts replays this stream in Python.
  assert.deepEqual(
    Array.from(new Random(0).fillNormal(new Float32Array(5))),
    [
      -0.04292575642466545,
      0.48816728591918945,
      -1.3734577894210815,
      -2.6232943534851074,
      -2.608858108520508,
    ],
  );
  for (const seed of [0, 1, 42]) {
    const fast = new Random(seed), slow = new Random(seed);
    // Odd lengths leave a spare variate for the next call, as normal() does.
    for (const n of [0, 1, 3, 2, 1001, 4, 7]) {
      const sigma = 0.25 + n / 100;
      const mean = new Random(seed + n).fillNormal(new Float32Array(n));
      const withMean = n % 2 === 1;
      const got = fast.fillNormal(new Float32Array(n), sigma, withMean ? { mean } : {});
      for (let i = 0; i < n; i++) {
        const want = new Float32Array([slow.normal() * sigma]);
        if (withMean) want[0] += mean[i];
        assert.ok(Object.is(got[i], want[0]), `seed ${seed} n ${n} i ${i}: ${got[i]} ${want[0]}`);
      }
      assert.equal(fast.uniform(), slow.uniform());
    }
  }
  assert.throws(
    () => new Random(0).fillNormal(new Float32Array(3), 1, { mean: new Float32Array(2) }),
    /Cannot add noise: mean has 2 values, expected 3/,
  );
});

/** The tap-by-tap sampler the fast paths must reproduce exactly. */
function sampleReference(
  src: Float32Array,
  options: { c: number; h: number; w: number; affine: Affine; fill: number },
): { out: Float32Array; adjoint: (g: Float32Array) => Float32Array } {
  const { c, h, w, affine, fill } = options;
  const [a, b, cc, d] = affine.m, [tx, ty] = affine.t;
  const hw = h * w, index = new Int32Array(4 * hw), weight = new Float32Array(4 * hw);
  for (let oy = 0; oy < h; oy++) {
    for (let ox = 0; ox < w; ox++) {
      const sx = a * ox + b * oy + tx, sy = cc * ox + d * oy + ty;
      const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
      for (let k = 0; k < 4; k++) {
        const x = x0 + (k & 1), y = y0 + (k >> 1), o = 4 * (oy * w + ox) + k;
        index[o] = x >= 0 && x < w && y >= 0 && y < h ? y * w + x : -1;
        weight[o] = (k & 1 ? fx : 1 - fx) * (k >> 1 ? fy : 1 - fy);
      }
    }
  }
  const out = new Float32Array(c * hw);
  for (let ch = 0; ch < c; ch++) {
    for (let o = 0; o < hw; o++) {
      let v = 0;
      for (let k = 4 * o; k < 4 * o + 4; k++) {
        v += weight[k] * (index[k] >= 0 ? src[ch * hw + index[k]] : fill);
      }
      out[ch * hw + o] = v;
    }
  }
  const adjoint = (g: Float32Array) => {
    const back = new Float32Array(c * hw);
    for (let ch = 0; ch < c; ch++) {
      for (let o = 0; o < hw; o++) {
        for (let k = 4 * o; k < 4 * o + 4; k++) {
          if (index[k] >= 0) back[ch * hw + index[k]] += weight[k] * g[ch * hw + o];
        }
      }
    }
    return back;
  };
  return { out, adjoint };
}

Deno.test("sampleAffine and its adjoint equal the tap-by-tap definition bit for bit", () => {
  const random = new Random(5);
  for (const [c, h, w] of [[3, 31, 24], [2, 8, 8]]) {
    const src = new Float32Array(randoms(c * h * w, h));
    const g = new Float32Array(randoms(c * h * w, w));
    for (let i = 0; i < 6; i++) {
      const affine = randomAffine(random, { h, w });
      const ref = sampleReference(src, { c, h, w, affine, fill: 0.5 });
      const out = new Float32Array(c * h * w), back = new Float32Array(c * h * w);
      sampleAffine(src, out, { c, h, w, affine, fill: 0.5 });
      sampleAffineAdjoint(g, back, { c, h, w, affine });
      assert.deepEqual(out, ref.out);
      assert.deepEqual(back, ref.adjoint(g));
    }
  }
});

Deno.test("separable bilinear resizing equals the direct four-tap formula bit for bit", () => {
  const cases = [[7, 7, 224, 224], [5, 9, 13, 4], [20, 30, 7, 11], [1, 1, 5, 5], [10, 1, 1, 10]];
  for (const [ih, iw, oh, ow] of cases) {
    for (const alignCorners of [false, true]) {
      const src = new Float32Array(randoms(2 * ih * iw, ih + iw));
      const got = upsampleBilinear(tensor(src, [1, 2, ih, iw]), [oh, ow], { alignCorners }).data;
      const taps = (n: number, m: number) =>
        Array.from({ length: m }, (_, i) => {
          const scale = alignCorners ? (m > 1 ? (n - 1) / (m - 1) : 0) : n / m;
          const s = alignCorners ? scale * i : Math.max(scale * (i + 0.5) - 0.5, 0);
          const i0 = Math.min(Math.floor(s), n - 1);
          return [i0, Math.min(i0 + 1, n - 1), Math.min(Math.max(s - i0, 0), 1)];
        });
      const ys = taps(ih, oh), xs = taps(iw, ow);
      const want = new Float32Array(2 * oh * ow);
      for (let p = 0; p < 2; p++) {
        for (let y = 0; y < oh; y++) {
          for (let x = 0; x < ow; x++) {
            const [y0, y1, fy] = ys[y],
              [x0, x1, fx] = xs[x],
              at = (r: number, q: number) => src[p * ih * iw + r * iw + q];
            const top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx;
            const bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx;
            want[p * oh * ow + y * ow + x] = top * (1 - fy) + bottom * fy;
          }
        }
      }
      assert.deepEqual(got, want, `${ih}x${iw} → ${oh}x${ow} alignCorners=${alignCorners}`);
      const plane = new Float32Array(oh * ow);
      bilinearPlane(src.subarray(0, ih * iw), plane, {
        from: [ih, iw],
        to: [oh, ow],
        alignCorners,
      });
      assert.deepEqual(plane, want.subarray(0, oh * ow));
    }
  }
});

Deno.test("bilinearSeparable is exact for any taps, also out of order (RISE's mirrored grid)", () => {
  const random = new Random(9);
  const grid = 7, oh = 40, ow = 33;
  const cells = Uint8Array.from({ length: grid * grid }, () => random.uniform() < 0.5 ? 1 : 0);
  const axis = (m: number) => {
    const lo = Int32Array.from({ length: m }, () => Math.floor(random.uniform() * grid));
    const hi = Int32Array.from({ length: m }, () => Math.floor(random.uniform() * grid));
    return { lo, hi, frac: Float64Array.from({ length: m }, () => random.uniform()) };
  };
  const ys = axis(oh), xs = axis(ow);
  const out = new Float32Array(oh * ow);
  bilinearSeparable(cells, out, { ys, xs, width: grid });
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const at = (r: number, q: number) => cells[r * grid + q];
      const fx = xs.frac[x], fy = ys.frac[y];
      const top = at(ys.lo[y], xs.lo[x]) * (1 - fx) + at(ys.lo[y], xs.hi[x]) * fx;
      const bottom = at(ys.hi[y], xs.lo[x]) * (1 - fx) + at(ys.hi[y], xs.hi[x]) * fx;
      assert.equal(out[y * ow + x], Math.fround(top * (1 - fy) + bottom * fy), `(${y}, ${x})`);
    }
  }
});
