/**
 * Gradient graphs from `buildGradientGraph` against central finite differences of the forward
 * graph, op by op (onnxruntime-web, WASM EP, float32).
 *
 * The loss is `L = Σ seed·of` with a random seed; `dL/dx` from the gradient graph is compared to
 * `(L(x + εeᵢ) − L(x − εeᵢ)) / 2ε` element by element (a random subset for larger inputs). Inputs
 * of piecewise-linear ops are drawn away from their kinks so the differences are exact.
 */
import * as ort from "onnxruntime-web";
import assert from "node:assert/strict";
import { buildGradientGraph, type GradientSpec } from "../graph/autodiff.ts";
import {
  type AttrValue,
  GraphBuilder,
  makeModel,
  makeTensor,
  makeValueInfo,
  type TensorProto,
} from "../graph/builder.ts";
import { decodeModel, encodeModel } from "../graph/onnx_io.ts";

ort.env.wasm.numThreads = 1;

/** Deterministic uniform [0, 1) generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function size(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Uniform values in [lo, hi). */
function uniform(dims: readonly number[], seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: size(dims) }, () => lo + (hi - lo) * r());
}

/** Values at least `gap` apart and at least `gap` from zero: kinks stay out of reach of ε. */
function spread(dims: readonly number[], seed: number, gap = 0.02): Float32Array {
  const n = size(dims);
  const r = rng(seed);
  const order = Array.from({ length: n }, (_, i) => i).sort(() => r() - 0.5);
  // The odd offset keeps values off round numbers, where kinks of the tested ops lie.
  return Float32Array.from(
    order,
    (k) => (k - n / 2 + 0.5) * gap + (k >= n / 2 ? gap : -gap) / 2 + 0.3137 * gap,
  );
}

interface Input {
  dims: number[];
  data: Float32Array;
  /** Symbolic dims in the model's input (default: the batch axis is "N"). */
  symbolic?: (number | string)[];
}

/** A one-or-few-node model: `build` emits nodes reading the inputs and returns the output. */
function model(
  inputs: Record<string, Input>,
  build: (b: GraphBuilder) => string,
  options: { initializers?: TensorProto[]; opset?: number } = {},
): Uint8Array {
  const b = new GraphBuilder(Object.keys(inputs));
  const out = build(b);
  const outName = "out";
  b.node("Identity", [out], { outputs: [outName] });
  return encodeModel(makeModel({
    inputs: Object.entries(inputs).map(([name, v]) =>
      makeValueInfo(name, { dims: v.symbolic ?? ["N", ...v.dims.slice(1)] })
    ),
    outputs: [makeValueInfo(outName)],
    nodes: b.nodes,
    initializers: [...(options.initializers ?? []), ...b.initializers],
    opset: options.opset,
  }));
}

const sessions = new Map<Uint8Array, Promise<ort.InferenceSession>>();
function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  let s = sessions.get(bytes);
  // Errors only: models with a dropped ceil-mode window make onnxruntime warn on every run.
  if (!s) sessions.set(bytes, s = ort.InferenceSession.create(bytes, { logSeverityLevel: 3 }));
  return s;
}

function feeds(inputs: Record<string, Input>, override?: [string, Float32Array]) {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, v] of Object.entries(inputs)) {
    const data = override && override[0] === name ? override[1] : v.data;
    out[name] = new ort.Tensor("float32", data, v.dims);
  }
  return out;
}

/** Run the gradient graph; returns the forward output, the seed and each gradient. */
async function gradients(
  bytes: Uint8Array,
  inputs: Record<string, Input>,
  spec: Omit<GradientSpec, "of"> & { of?: string },
  seedValue?: number,
) {
  const of = spec.of ?? "out";
  const gg = buildGradientGraph(bytes, { ...spec, of });
  const fwd = await session(bytes);
  const y = (await fwd.run(feeds(inputs), [of]))[of];
  const seed = seedValue === undefined
    ? uniform(y.dims, 99)
    : new Float32Array(y.data.length).fill(seedValue);
  const s = await session(gg.bytes);
  const res = await s.run({ ...feeds(inputs), [gg.seed]: new ort.Tensor("float32", seed, y.dims) });
  return {
    gg,
    y: y.data as Float32Array,
    seed,
    grads: gg.grads.map((g) => res[g].data as Float32Array),
    dims: gg.grads.map((g) => res[g].dims),
  };
}

/** Finite-difference check of d(Σ seed·out)/d(wrt) for each wrt that is a graph input. */
async function fdCheck(
  bytes: Uint8Array,
  inputs: Record<string, Input>,
  options: { wrt?: string[]; eps?: number; tol?: number; samples?: number; of?: string } = {},
): Promise<number> {
  const label = opTypes(bytes);
  const wrt = options.wrt ?? Object.keys(inputs);
  const eps = options.eps ?? 1e-2;
  const tol = options.tol ?? 2e-3;
  const of = options.of ?? "out";
  const { grads, seed, dims } = await gradients(bytes, inputs, { wrt, of });
  const fwd = await session(bytes);
  const loss = async (name: string, data: Float32Array) => {
    const y = (await fwd.run(feeds(inputs, [name, data]), [of]))[of].data as Float32Array;
    let l = 0;
    for (let i = 0; i < y.length; i++) l += seed[i] * y[i];
    return l;
  };
  let worst = 0;
  for (let w = 0; w < wrt.length; w++) {
    const name = wrt[w];
    const x = inputs[name].data;
    assert.deepEqual(dims[w], inputs[name].dims, `gradient of ${name} has the input's shape`);
    const g = grads[w];
    const r = rng(7 + w);
    const n = x.length;
    const count = Math.min(n, options.samples ?? 400);
    const idx = count === n
      ? [...Array(n).keys()]
      : Array.from({ length: count }, () => Math.floor(r() * n));
    let maxRef = 0, maxErr = 0;
    const fd = new Float64Array(n);
    for (const i of idx) {
      const p = x.slice(), m = x.slice();
      p[i] += eps;
      m[i] -= eps;
      // The step actually taken in float32.
      const h = p[i] - m[i];
      fd[i] = (await loss(name, p) - await loss(name, m)) / h;
      maxRef = Math.max(maxRef, Math.abs(fd[i]));
    }
    for (const i of idx) maxErr = Math.max(maxErr, Math.abs(fd[i] - g[i]));
    const rel = maxErr / Math.max(maxRef, 1e-6);
    worst = Math.max(worst, rel);
    assert.ok(
      rel <= tol,
      `${label} d/d${name}: max |fd − grad| = ${maxErr.toExponential(3)} vs max |fd| ${
        maxRef.toExponential(3)
      } (rel ${rel.toExponential(2)} > ${tol})`,
    );
    assert.ok(maxRef > 0, `d/d${name} is not identically zero`);
  }
  return worst;
}

/** The op types of a model, for messages. */
function opTypes(bytes: Uint8Array): string {
  return decodeModel(bytes).graph!.node.map((n) => n.opType).join(",");
}

/** Shorthand: one node `op(inputs…)` with attributes. */
function unary(op: string, attrs: Record<string, AttrValue> = {}, extra: string[] = []) {
  return (b: GraphBuilder) => b.op(op, ["x", ...extra], attrs);
}

function input(dims: number[], data: Float32Array): Input {
  return { dims, data };
}

const X = [2, 3, 5, 4];

Deno.test("conv: grouped, dilated, strided, padded, uneven shapes", async () => {
  const w = makeTensor("w", uniform([6, 2, 3, 2], 1), { dims: [6, 2, 3, 2] });
  const bias = makeTensor("bias", uniform([6], 2), { dims: [6] });
  const bytes = model(
    { x: input([2, 4, 11, 10], uniform([2, 4, 11, 10], 3)) },
    (b) =>
      b.op("Conv", ["x", "w", "bias"], {
        group: 2,
        strides: [2, 3],
        dilations: [2, 1],
        pads: [1, 0, 2, 1],
      }),
    { initializers: [w, bias] },
  );
  await fdCheck(bytes, { x: input([2, 4, 11, 10], uniform([2, 4, 11, 10], 3)) });
});

Deno.test("conv: depthwise stride 2 with (H+2p−k) % s ≠ 0, and auto_pad SAME_UPPER", async () => {
  const w = makeTensor("w", uniform([5, 1, 3, 3], 4), { dims: [5, 1, 3, 3] });
  const x = input([2, 5, 8, 7], uniform([2, 5, 8, 7], 5));
  await fdCheck(
    model(
      { x },
      (b) => b.op("Conv", ["x", "w"], { group: 5, strides: [2, 2], pads: [1, 1, 1, 1] }),
      {
        initializers: [w],
      },
    ),
    { x },
  );
  const w2 = makeTensor("w", uniform([3, 5, 4, 3], 6), { dims: [3, 5, 4, 3] });
  await fdCheck(
    model({ x }, (b) => b.op("Conv", ["x", "w"], { strides: [3, 2], auto_pad: "SAME_UPPER" }), {
      initializers: [w2],
    }),
    { x },
  );
  const w3 = makeTensor("w", uniform([4, 5, 1, 1], 7), { dims: [4, 5, 1, 1] });
  await fdCheck(
    model({ x }, (b) => b.op("Conv", ["x", "w"], { strides: [2, 2] }), { initializers: [w3] }),
    { x },
  );
});

Deno.test("conv: stride-1 grouped/depthwise (flipped-kernel Conv) and pads beyond the kernel", async () => {
  const x = input([2, 4, 7, 6], uniform([2, 4, 7, 6], 8));
  const cases: [number[], Record<string, AttrValue>][] = [
    [[6, 2, 3, 2], { group: 2, dilations: [2, 1], pads: [2, 0, 1, 1] }],
    [[8, 1, 3, 3], { group: 4, pads: [1, 1, 1, 1] }],
    [[4, 1, 3, 3], { group: 4, pads: [0, 2, 1, 0] }],
    [[4, 2, 1, 1], { group: 2, pads: [1, 1, 1, 1] }],
    // Dense (group 1): a Conv with the transposed, flipped kernel too.
    [[5, 4, 3, 2], { dilations: [1, 2], pads: [1, 0, 2, 1] }],
    [[3, 4, 3, 3], { pads: [1, 1, 1, 1] }],
    [[6, 4, 1, 1], {}],
  ];
  for (const [dims, attrs] of cases) {
    const w = makeTensor("w", uniform(dims, 9), { dims });
    const bytes = model({ x }, (b) => b.op("Conv", ["x", "w"], attrs), { initializers: [w] });
    await fdCheck(bytes, { x });
    const ops = opTypes(buildGradientGraph(bytes, { of: "out", wrt: ["x"] }).bytes);
    // Pads beyond the kernel's reach (the 1×1 with pads 1) keep the ConvTranspose.
    const reach = (dims[2] - 1) * ((attrs.dilations as number[] | undefined)?.[0] ?? 1);
    const fits = ((attrs.pads as number[] | undefined) ?? [0]).every((p) => p <= reach);
    if (fits) assert.ok(!ops.includes("ConvTranspose"), `${dims}: ${ops}`);
  }
});

Deno.test("gemm: transA/transB, alpha/beta, broadcast C (gradient w.r.t. A, B and C)", async () => {
  for (const [ta, tb] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
    const a = input(ta ? [4, 3] : [3, 4], uniform([12], 10 + ta));
    const bm = input(tb ? [5, 4] : [4, 5], uniform([20], 12 + tb));
    const c = input([5], uniform([5], 14));
    const ins = {
      a: { ...a, symbolic: a.dims },
      b: { ...bm, symbolic: bm.dims },
      c: { ...c, symbolic: c.dims },
    };
    await fdCheck(
      model(ins, (b) =>
        b.op("Gemm", ["a", "b", "c"], {
          transA: ta,
          transB: tb,
          alpha: { f: 0.7 },
          beta: { f: 1.3 },
        })),
      ins,
    );
  }
});

Deno.test("matmul: batched with broadcast batch dims, and 1-D operands", async () => {
  const ins = {
    a: { ...input([2, 1, 4, 5], uniform([2, 1, 4, 5], 20)), symbolic: [2, 1, 4, 5] },
    b: { ...input([3, 5, 6], uniform([3, 5, 6], 21)), symbolic: [3, 5, 6] },
  };
  await fdCheck(model(ins, (b) => b.op("MatMul", ["a", "b"])), ins);
  const ins2 = {
    a: { ...input([5], uniform([5], 22)), symbolic: [5] },
    b: { ...input([2, 5, 3], uniform([2, 5, 3], 23)), symbolic: [2, 5, 3] },
  };
  await fdCheck(model(ins2, (b) => b.op("MatMul", ["a", "b"])), ins2);
  const ins3 = {
    a: { ...input([2, 4, 5], uniform([2, 4, 5], 24)), symbolic: ["N", 4, 5] },
    b: { ...input([5], uniform([5], 25)), symbolic: [5] },
  };
  await fdCheck(model(ins3, (b) => b.op("MatMul", ["a", "b"])), ins3);
  const ins4 = {
    a: { ...input([3, 5], uniform([3, 5], 26)), symbolic: ["N", 5] },
    b: { ...input([5, 2], uniform([5, 2], 27)), symbolic: [5, 2] },
  };
  await fdCheck(model(ins4, (b) => b.op("MatMul", ["a", "b"])), ins4);
});

Deno.test("add/sub/mul/div/pow with broadcasting in both directions", async () => {
  const ins = {
    a: input([2, 3, 4, 5], uniform([2, 3, 4, 5], 30)),
    b: { ...input([3, 1, 5], uniform([3, 1, 5], 31, 0.5, 1.5)), symbolic: [3, 1, 5] },
  };
  for (const op of ["Add", "Sub", "Mul", "Div"]) {
    await fdCheck(model(ins, (b) => b.op(op, ["a", "b"])), ins);
  }
  // Both operands broadcast: [2,1,4,1] with [3,1,5].
  const ins2 = {
    a: input([2, 1, 4, 1], uniform([2, 1, 4, 1], 32)),
    b: { ...input([3, 1, 5], uniform([3, 1, 5], 33, 0.5, 1.5)), symbolic: [3, 1, 5] },
  };
  for (const op of ["Add", "Sub", "Mul", "Div"]) {
    await fdCheck(model(ins2, (b) => b.op(op, ["a", "b"])), ins2);
  }
  const pos = { x: input(X, uniform(X, 34, 0.5, 2)) };
  for (const e of [2, 3, 0.5, -1.5]) {
    await fdCheck(model(pos, (b) => b.op("Pow", ["x", b.scalar(e)])), pos, { eps: 1e-3 });
  }
});

Deno.test("smooth unary ops", async () => {
  const x = { x: input(X, uniform(X, 40, -2, 2)) };
  const pos = { x: input(X, uniform(X, 41, 0.5, 2)) };
  for (const op of ["Sigmoid", "Tanh", "Erf", "Exp", "Neg", "Softplus"]) {
    await fdCheck(model(x, unary(op)), x);
  }
  for (const op of ["Log", "Sqrt", "Reciprocal"]) {
    await fdCheck(model(pos, unary(op)), pos, { eps: 1e-3 });
  }
  for (const axis of [1, -1]) {
    await fdCheck(model(x, unary("Softmax", { axis })), x);
    await fdCheck(model(x, unary("LogSoftmax", { axis })), x);
  }
});

Deno.test("piecewise-linear activations away from their kinks", async () => {
  const x = { x: input(X, spread(X, 50, 0.05)) };
  const eps = 1e-3;
  await fdCheck(model(x, unary("Relu")), x, { eps });
  await fdCheck(model(x, unary("Abs")), x, { eps });
  await fdCheck(model(x, unary("LeakyRelu", { alpha: { f: 0.1 } })), x, { eps });
  await fdCheck(model(x, unary("HardSigmoid", { alpha: { f: 0.4 }, beta: { f: 0.5 } })), x, {
    eps,
  });
  const wide = { x: input(X, spread(X, 51, 0.33)) };
  await fdCheck(model(wide, unary("HardSwish")), wide, { eps });
  await fdCheck(model(wide, (b) => b.op("Clip", ["x", b.scalar(0), b.scalar(2)])), wide, { eps });
  await fdCheck(model(wide, (b) => b.op("Clip", ["x", b.scalar(-1.5), b.scalar(2)])), wide, {
    eps,
  });
  await fdCheck(model(wide, (b) => b.op("Clip", ["x", "", b.scalar(1)])), wide, { eps });
  // Opset 10: Clip bounds are attributes; the gradient graph (opset 16) turns them into inputs.
  await fdCheck(
    model(wide, unary("Clip", { min: { f: 0 }, max: { f: 6 } }), { opset: 10 }),
    wide,
    { eps },
  );
});

Deno.test("composite activations: SiLU and the GELU pattern", async () => {
  const x = { x: input(X, uniform(X, 60, -3, 3)) };
  await fdCheck(model(x, (b) => b.op("Mul", ["x", b.op("Sigmoid", ["x"])])), x);
  await fdCheck(
    model(x, (b) => {
      const erf = b.op("Erf", [b.op("Div", ["x", b.scalar(Math.SQRT2)])]);
      const half = b.op("Mul", ["x", b.op("Add", [erf, b.scalar(1)])]);
      return b.op("Mul", [half, b.scalar(0.5)]);
    }),
    x,
  );
});

Deno.test("maxpool: overlapping, padded, ceil_mode, dilated (no ties)", async () => {
  const dims = [2, 3, 9, 8];
  const x = { x: input(dims, spread(dims, 70, 0.01)) };
  const eps = 1e-3;
  const cases: Record<string, AttrValue>[] = [
    { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 },
    { kernel_shape: [3, 2], strides: [2, 2], pads: [1, 0, 0, 1], ceil_mode: 1 },
    { kernel_shape: [2, 2], strides: [1, 1], dilations: [2, 2] },
    { kernel_shape: [2, 2], strides: [2, 2] },
    { kernel_shape: [3, 3], strides: [3, 3], ceil_mode: 1 },
  ];
  for (const attrs of cases) await fdCheck(model(x, unary("MaxPool", attrs)), x, { eps });
});

Deno.test("averagepool: count_include_pad 0/1, pads, ceil_mode", async () => {
  const dims = [2, 3, 9, 8];
  const x = { x: input(dims, uniform(dims, 80)) };
  for (const count_include_pad of [0, 1]) {
    for (const ceil_mode of [0, 1]) {
      await fdCheck(
        model(
          x,
          unary("AveragePool", {
            kernel_shape: [3, 3],
            strides: [2, 2],
            pads: [1, 1, 1, 1],
            count_include_pad,
            ceil_mode,
          }),
        ),
        x,
      );
      await fdCheck(
        model(
          x,
          unary("AveragePool", {
            kernel_shape: [2, 3],
            strides: [2, 2],
            pads: [0, 1, 1, 0],
            count_include_pad,
            ceil_mode,
          }),
        ),
        x,
      );
    }
  }
  await fdCheck(model(x, unary("AveragePool", { kernel_shape: [2, 2], strides: [2, 2] })), x);
});

Deno.test("global pools and reductions", async () => {
  const x = { x: input(X, spread(X, 90, 0.01)) };
  await fdCheck(model(x, unary("GlobalAveragePool")), x);
  await fdCheck(model(x, unary("GlobalMaxPool")), x, { eps: 1e-3 });
  for (const keepdims of [0, 1]) {
    await fdCheck(model(x, (b) => b.op("ReduceSum", ["x", b.ints([1, -1])], { keepdims })), x);
    await fdCheck(model(x, unary("ReduceMean", { axes: [2, 3], keepdims })), x);
    await fdCheck(model(x, unary("ReduceMax", { axes: [1], keepdims })), x, { eps: 1e-3 });
  }
  await fdCheck(model(x, unary("ReduceMean", { keepdims: 0 })), x);
  // Opset 11: ReduceSum axes is an attribute.
  await fdCheck(model(x, unary("ReduceSum", { axes: [0, 2] }), { opset: 11 }), x);
});

Deno.test("normalization: batch, instance, layer (opset 17) and decomposed layer norm", async () => {
  const x = { x: input(X, uniform(X, 100, -2, 2)) };
  const c = (name: string, seed: number, lo = 0.5, hi = 1.5) =>
    makeTensor(name, uniform([3], seed, lo, hi), { dims: [3] });
  await fdCheck(
    model(x, unary("BatchNormalization", { epsilon: { f: 1e-3 } }, ["s", "bb", "m", "v"]), {
      initializers: [c("s", 1), c("bb", 2, -1, 1), c("m", 3, -1, 1), c("v", 4)],
    }),
    x,
  );
  await fdCheck(
    model(x, unary("InstanceNormalization", { epsilon: { f: 1e-5 } }, ["s", "bb"]), {
      initializers: [c("s", 5), c("bb", 6, -1, 1)],
    }),
    x,
    { eps: 3e-3 },
  );
  const g = makeTensor("g", uniform([5, 4], 7, 0.5, 1.5), { dims: [5, 4] });
  const beta = makeTensor("beta", uniform([5, 4], 8), { dims: [5, 4] });
  await fdCheck(
    model(x, unary("LayerNormalization", { axis: 2 }, ["g", "beta"]), { initializers: [g, beta] }),
    x,
    { eps: 3e-3 },
  );
  // The pattern torch exports at opset < 17.
  const g1 = makeTensor("g", uniform([4], 9, 0.5, 1.5), { dims: [4] });
  await fdCheck(
    model(
      x,
      (b) => {
        const mean = b.op("ReduceMean", ["x"], { axes: [-1] });
        const xc = b.op("Sub", ["x", mean]);
        const v = b.op("ReduceMean", [b.op("Pow", [xc, b.scalar(2)])], { axes: [-1] });
        const std = b.op("Sqrt", [b.op("Add", [v, b.scalar(1e-5)])]);
        return b.op("Add", [b.op("Mul", [b.op("Div", [xc, std]), "g"]), b.scalar(0.1)]);
      },
      { initializers: [g1], opset: 13 },
    ),
    x,
    { eps: 3e-3 },
  );
});

Deno.test("data movement: concat, split, slice, transpose, reshape, squeeze, pad, gather", async () => {
  const x = { x: input(X, uniform(X, 110)) };
  const y = { x: x.x, y: input([2, 2, 5, 4], uniform([2, 2, 5, 4], 111)) };
  await fdCheck(model(y, (b) => b.op("Concat", ["x", "y", "x"], { axis: 1 })), y);
  await fdCheck(
    model(x, (b) => {
      const [p, q] = b.node("Split", ["x", b.ints([2, 3])], { attrs: { axis: 2 }, outputs: 2 });
      return b.op("Mul", [p, b.op("Slice", [q, b.ints([1]), b.ints([3]), b.ints([2])])]);
    }),
    x,
  );
  // Opset 11: split as an attribute, one output unused.
  await fdCheck(
    model(x, (b) => b.node("Split", ["x"], { attrs: { axis: 1, split: [1, 2] }, outputs: 2 })[1], {
      opset: 11,
    }),
    x,
  );
  await fdCheck(
    model(
      x,
      (b) =>
        b.op("Slice", ["x", b.ints([-4, 1]), b.ints([100, 4]), b.ints([2, 3]), b.ints([2, 2])]),
    ),
    x,
  );
  await fdCheck(model(x, unary("Transpose", { perm: [0, 2, 3, 1] })), x);
  await fdCheck(model(x, (b) => b.op("Reshape", ["x", b.ints([0, -1, 2])])), x);
  await fdCheck(model(x, unary("Flatten", { axis: 2 })), x);
  await fdCheck(
    model(x, (b) => b.op("Squeeze", [b.op("Unsqueeze", ["x"], { axes: [0, 3] })], { axes: [0] }), {
      opset: 11,
    }),
    x,
  );
  await fdCheck(
    model(x, (b) => b.op("Pad", ["x", b.ints([0, 1, 2, 0, 0, 0, 1, 3]), b.scalar(0.5)])),
    x,
  );
  await fdCheck(model(x, (b) => b.op("Pad", ["x", b.ints([0, 0, -1, 1, 0, 0, 1, -2])])), x);
  await fdCheck(
    model(
      x,
      (b) => b.op("Gather", ["x", b.constant([2], { type: "int64", dims: [] })], { axis: 2 }),
    ),
    x,
  );
  await fdCheck(model(x, (b) => b.op("Gather", ["x", b.ints([3, 0, 3, -1])], { axis: 2 })), x);
  await fdCheck(model(x, (b) => b.op("Gather", ["x", b.ints([1, 2])], { axis: 3 })), x);
  await fdCheck(
    model(x, (b) => b.op("Cast", [b.op("Identity", [b.op("Dropout", ["x"])])], { to: 1 })),
    x,
  );
  // A reshape whose target shape is computed in the graph (x.view(x.size(0), -1)).
  await fdCheck(
    model(x, (b) => {
      const n = b.op(
        "Gather",
        [b.op("Shape", ["x"]), b.constant([0], { type: "int64", dims: [] })],
        { axis: 0 },
      );
      const shape = b.op("Concat", [b.op("Unsqueeze", [n, b.ints([0])]), b.ints([-1])], {
        axis: 0,
      });
      return b.op("Gemm", [b.op("Reshape", ["x", shape]), "fc"], { transB: 1 });
    }, { initializers: [makeTensor("fc", uniform([7, 60], 112), { dims: [7, 60] })] }),
    x,
  );
});

Deno.test("opset 18 source: reduce axes as inputs, Split num_outputs (opset kept)", async () => {
  const x = { x: input(X, spread(X, 125, 0.02)) };
  const bytes = model(x, (b) => {
    const [p, q] = b.node("Split", ["x"], { attrs: { axis: 3, num_outputs: 2 }, outputs: 2 });
    const m = b.op("ReduceMean", [p, b.ints([1, 3])], { keepdims: 1 });
    const s = b.op("ReduceMax", [q, b.ints([2])], { keepdims: 0 });
    return b.op("Mul", [
      b.op("LayerNormalization", [q, "g"], { axis: 1 }),
      b.op("Add", [m, b.op("Unsqueeze", [s, b.ints([2])])]),
    ]);
  }, { opset: 18, initializers: [makeTensor("g", uniform([3, 5, 2], 126), { dims: [3, 5, 2] })] });
  assert.equal(
    Number(
      decodeModel(buildGradientGraph(bytes, { of: "out", wrt: ["x"] }).bytes).opsetImport[0]
        .version,
    ),
    18,
  );
  await fdCheck(bytes, x, { eps: 2e-3 });
});

Deno.test("softmax at opset 11 keeps its flatten-from-axis meaning", async () => {
  const x = { x: input(X, uniform(X, 120, -2, 2)) };
  await fdCheck(model(x, unary("Softmax", {}), { opset: 11 }), x);
  await fdCheck(model(x, unary("LogSoftmax", { axis: 2 }), { opset: 11 }), x);
});

Deno.test("fan-out, gradient w.r.t. an intermediate tensor, and several wrt", async () => {
  const x = { x: input(X, spread(X, 130, 0.02)) };
  const w = makeTensor("w", uniform([4, 3, 3, 3], 131), { dims: [4, 3, 3, 3] });
  const net = (b: GraphBuilder) => {
    const h = b.node("Conv", ["x", "w"], { attrs: { pads: [1, 1, 1, 1] }, outputs: ["h"] })[0];
    const r = b.op("Relu", [h]);
    const s = b.op("Mul", [h, b.op("Sigmoid", [h])]);
    return b.op("Add", [b.op("Mul", [r, h]), b.op("Add", [s, h])]);
  };
  const bytes = model(x, net, { initializers: [w] });
  await fdCheck(bytes, x, { eps: 1e-3 });
  // Gradient w.r.t. the intermediate `h` equals the analytic d/dh of the head.
  const { grads, seed } = await gradients(bytes, x, { wrt: ["h", "x"] });
  const fwd = await session(
    model(
      x,
      (b) => b.node("Conv", ["x", "w"], { attrs: { pads: [1, 1, 1, 1] }, outputs: ["h"] })[0],
      {
        initializers: [w],
      },
    ),
  );
  const h = (await fwd.run(feeds(x)))["out"].data as Float32Array;
  let err = 0, ref = 0;
  for (let i = 0; i < h.length; i++) {
    const v = h[i], sg = 1 / (1 + Math.exp(-v));
    const d = (v > 0 ? 2 * v : 0) + sg + v * sg * (1 - sg) + 1;
    err = Math.max(err, Math.abs(d * seed[i] - grads[0][i]));
    ref = Math.max(ref, Math.abs(d * seed[i]));
  }
  assert.ok(err / ref < 1e-5, `d/dh rel err ${err / ref}`);
});

Deno.test("dynamic spatial dims: shapes resolved in the graph", async () => {
  const dims = [2, 3, 10, 9];
  const x = { x: { ...input(dims, spread(dims, 135, 0.01)), symbolic: ["N", 3, "H", "W"] } };
  const w = makeTensor("w", uniform([4, 3, 3, 3], 136), { dims: [4, 3, 3, 3] });
  const bytes = model(x, (b) => {
    const h = b.op("Conv", ["x", "w"], { strides: [2, 2], pads: [1, 1, 1, 1] });
    const p = b.op("MaxPool", [h], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    const a = b.op("AveragePool", [h], {
      kernel_shape: [3, 3],
      strides: [2, 2],
      pads: [1, 1, 1, 1],
      count_include_pad: 1,
    });
    const g = b.op("GlobalAveragePool", [b.op("Mul", [p, a])]);
    return b.op("Add", [g, b.op("ReduceMean", [h], { axes: [2, 3] })]);
  }, { initializers: [w] });
  await fdCheck(bytes, x, { eps: 1e-3 });
  // The same graph at other spatial sizes, without rebuilding the gradient graph.
  const other = [1, 3, 7, 12];
  await fdCheck(bytes, {
    x: { ...input(other, spread(other, 137, 0.01)), symbolic: ["N", 3, "H", "W"] },
  }, {
    eps: 1e-3,
  });
});

Deno.test("batched backward equals images one by one", async () => {
  const dims = [3, 3, 10, 10];
  const data = uniform(dims, 140);
  const w = makeTensor("w", uniform([4, 3, 3, 3], 141), { dims: [4, 3, 3, 3] });
  const fc = makeTensor("fc", uniform([5, 4], 142), { dims: [5, 4] });
  const bytes = model({ x: input(dims, data) }, (b) => {
    const h = b.op("Relu", [b.op("Conv", ["x", "w"], { strides: [2, 2] })]);
    const p = b.op("MaxPool", [h], { kernel_shape: [2, 2], strides: [2, 2] });
    return b.op("Gemm", [b.op("Flatten", [b.op("GlobalAveragePool", [p])]), "fc"], { transB: 1 });
  }, { initializers: [w, fc] });
  const gg = buildGradientGraph(bytes, { of: "out", wrt: ["x"] });
  const s = await session(gg.bytes);
  const seed = uniform([3, 5], 143);
  const all = (await s.run({
    x: new ort.Tensor("float32", data, dims),
    [gg.seed]: new ort.Tensor("float32", seed, [3, 5]),
  }))[gg.grads[0]].data as Float32Array;
  const per = 300;
  for (let n = 0; n < 3; n++) {
    const one = (await s.run({
      x: new ort.Tensor("float32", data.slice(n * per, (n + 1) * per), [1, 3, 10, 10]),
      [gg.seed]: new ort.Tensor("float32", seed.slice(n * 5, n * 5 + 5), [1, 5]),
    }))[gg.grads[0]].data as Float32Array;
    for (let i = 0; i < per; i++) assert.ok(Math.abs(one[i] - all[n * per + i]) <= 1e-6);
  }
});

Deno.test("relu rules: standard, guided, deconvnet on Relu and ReLU6-like Clip", async () => {
  const dims = [1, 2, 3, 4];
  const xs = spread(dims, 150, 0.6);
  const x = { x: input(dims, xs) };
  for (const kind of ["Relu", "Clip"]) {
    const bytes = model(
      x,
      (b) => kind === "Relu" ? b.op("Relu", ["x"]) : b.op("Clip", ["x", b.scalar(0), b.scalar(3)]),
    );
    for (const relu of ["standard", "guided", "deconvnet"] as const) {
      const gg = buildGradientGraph(bytes, { of: "out", wrt: ["x"], relu });
      const s = await session(gg.bytes);
      const seed = uniform(dims, 151);
      const g = (await s.run({
        x: new ort.Tensor("float32", xs, dims),
        [gg.seed]: new ort.Tensor("float32", seed, dims),
      }))[gg.grads[0]].data as Float32Array;
      for (let i = 0; i < xs.length; i++) {
        const pass = xs[i] > 0 && (kind === "Relu" || xs[i] < 3);
        const want = relu === "standard"
          ? (pass ? seed[i] : 0)
          : relu === "guided"
          ? (pass && seed[i] > 0 ? seed[i] : 0)
          : Math.max(seed[i], 0);
        // `===`: masks multiply, so a blocked negative dy gives -0, the same value as torch's +0.
        assert.ok(g[i] === want, `${kind} ${relu} at ${i}: x=${xs[i]} dy=${seed[i]}: ${g[i]}`);
      }
    }
  }
});

Deno.test("relu rules: ReLU6 band masks are exact at 0, max, subnormals and next to max", async () => {
  const below6 = Math.fround(6 - 2 ** -22);
  const xs = Float32Array.from([-1, 0, 1e-45, 1e-40, 1e-38, 0.5, 3, below6, 6, 7, 0.25, 0.49]);
  const dims = [1, 1, 1, xs.length];
  const seed = Float32Array.from(xs, (_, i) => (i % 2 ? -1 : 1) * (i + 1));
  // max 6 takes the one-comparison band y·(max − y) > 0; max 0.5 the two-comparison mask.
  for (const max of [6, 0.5]) {
    const bytes = model(
      { x: input(dims, xs) },
      (b) => b.op("Clip", ["x", b.scalar(0), b.scalar(max)]),
    );
    const gg = buildGradientGraph(bytes, { of: "out", wrt: ["x"] });
    const s = await session(gg.bytes);
    const g = (await s.run({
      x: new ort.Tensor("float32", xs, dims),
      [gg.seed]: new ort.Tensor("float32", seed, dims),
    }))[gg.grads[0]].data as Float32Array;
    for (let i = 0; i < xs.length; i++) {
      const want = xs[i] > 0 && xs[i] < max ? seed[i] : 0;
      assert.ok(g[i] === want, `max ${max} at x=${xs[i]}: got ${g[i]}, want ${want}`);
    }
  }
});

Deno.test("pruning: only nodes between wrt and of are differentiated; keep outputs", () => {
  const x = { x: input(X, uniform(X, 160)) };
  const bytes = model(x, (b) => {
    const a = b.node("Sigmoid", ["x"], { outputs: ["a"] })[0];
    b.node("Tanh", ["x"], { outputs: ["unused"] });
    return b.op("Exp", [a]);
  });
  const gg = buildGradientGraph(bytes, { of: "out", wrt: ["a"], keep: ["a"] });
  assert.deepEqual(gg.outputs, ["out", "a"]);
  const ops = decodeModel(gg.bytes).graph!.node.map((n) => n.opType);
  assert.ok(!ops.includes("Tanh"), "unused branch pruned");
  assert.deepEqual(ops.filter((o) => o === "Sigmoid").length, 1, "no backward for Sigmoid");
  assert.ok(!ops.includes("Sum"));
});

Deno.test("errors: an op without a rule on a gradient path names the node and the supported ops", () => {
  const x = { x: input(X, uniform(X, 170)) };
  const bytes = model(x, (b) => b.op("TopK", ["x", b.ints([2])], {}));
  assert.throws(
    () => buildGradientGraph(bytes, { of: "out", wrt: ["x"] }),
    /Cannot differentiate node "topk_node[^"]*" \(TopK\): no backward rule; supported ops are .*Conv/,
  );
  assert.throws(
    () => buildGradientGraph(bytes, { of: "nope", wrt: ["x"] }),
    /'of' tensor "nope" is not in the graph/,
  );
});
