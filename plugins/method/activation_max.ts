/**
 * `activation-max`: synthesize the input a unit most wants to see (Erhan et al. 2009,
 * "Visualizing Higher-Layer Features of a Deep Network"; Olah et al. 2017, "Feature
 * Visualization", https://distill.pub/2017/feature-visualization/), as Lucid's `render_vis`:
 *
 *   maximize Σ wᵢ·objectiveᵢ(f(T(P(θ)))) − λ·diversity − regularizers   over θ, with Adam,
 *
 * where P is the image parameterization (Fourier with 1/f scaling and decorrelated colour, or
 * pixels; `kernels/fourier_image.ts`), T a random transformation per step (Lucid's
 * `standard_transforms`; `kernels/transforms.ts`) and f the model after its input normalization.
 * The network's gradient comes from the ONNX differentiator (seeded with the objective's
 * derivative); P and T are carried back by their exact adjoints in TypeScript.
 *
 * Output `[N,3,H,W]` in model-input space: one image per row — per unit in `channels`, per class
 * in `target`, or `batch` facets of one unit. The objective per step is in `info.objective`.
 *
 * @module
 */
import { z } from "zod";
import { Adam } from "../../kernels/adam.ts";
import { imageParameterization } from "../../kernels/fourier_image.ts";
import { Random } from "../../kernels/random.ts";
import { sizeOf, type Tensor, tensor } from "../../kernels/tensor.ts";
import {
  type Affine,
  IDENTITY,
  randomAffine,
  sampleAffine,
  sampleAffineAdjoint,
} from "../../kernels/transforms.ts";
import { ParamError } from "../../pipeline/errors.ts";
import { explanation, since } from "../../pipeline/explanation.ts";
import { gradients } from "../../pipeline/gradients.ts";
import { resolveLayer } from "../../pipeline/layers.ts";
import { defineMethod } from "../../pipeline/plugin.ts";
import { softmaxOf } from "../../pipeline/targets.ts";
import { modelNormalization } from "../preprocess/image.ts";
import { internalBatchParam } from "./_gradient.ts";

const OBJECTIVES = ["logit", "probability", "channel", "neuron", "layer"] as const;
/** What one objective term measures. */
export type ObjectiveKind = typeof OBJECTIVES[number];

const index = z.number().int().nonnegative();

/** One extra weighted term of the objective. */
export const objectiveTerm = z.object({
  objective: z.enum(OBJECTIVES),
  layer: z.string().optional(),
  /** Channel (channel, neuron) or class (logit, probability). */
  unit: index.default(0),
  x: index.optional(),
  y: index.optional(),
  weight: z.number().default(1),
}).strict();

/** Parameters of `activation-max`. */
export const activationMaxParams = z.object({
  /** The main objective (Lucid: `channel`, `neuron`, `deepdream`, class logit or probability). */
  objective: z.enum(OBJECTIVES).default("logit"),
  /** Tensor for channel, neuron and layer objectives. */
  layer: z.string().optional(),
  /** Class(es) for logit and probability objectives; a list makes one image per class. */
  target: z.union([index, z.array(index).min(1)]).default(0),
  /** Channel(s) for channel and neuron objectives; a list makes one image per channel. */
  channel: z.union([index, z.array(index).min(1)]).optional(),
  /** One image per channel (or class): a list, or `k` for the first k. */
  channels: z.union([z.number().int().positive(), z.array(index).min(1)]).optional(),
  /** Neuron position (default: the centre of the layer). */
  x: index.optional(),
  y: index.optional(),
  /** Extra weighted terms added to the main objective. */
  terms: z.array(objectiveTerm).default([]),
  /** Images per unit when one unit is asked for (facets, with `diversity`). */
  batch: z.number().int().positive().default(1),
  /** Weight of Lucid's Gram-matrix `diversity` penalty across the batch (Lucid uses 1e2). */
  diversity: z.number().nonnegative().default(0),
  /** Layer for the diversity term (default: `layer`). */
  diversity_layer: z.string().optional(),
  parameterization: z.enum(["fourier", "pixel"]).default("fourier"),
  decorrelate: z.boolean().default(true),
  decay_power: z.number().nonnegative().default(1),
  transforms: z.enum(["standard", "none"]).default("standard"),
  steps: z.number().int().nonnegative().default(512),
  lr: z.number().positive().default(0.05),
  seed: z.number().int().default(0),
  /** Penalties on the [0,1] image: Σ|x − ½|, √Σ(x − ½)², and total variation. */
  l1: z.number().nonnegative().default(0),
  l2: z.number().nonnegative().default(0),
  tv: z.number().nonnegative().default(0),
  /** Weight of Lucid's `blur_input_each_step`: pulls the image toward its 3×3 blur. */
  blur: z.number().nonnegative().default(0),
  /** Image size `[h, w]` (default: the model's input size; needed when it is dynamic). */
  size: z.union([z.number().int().positive(), z.tuple([index, index])]).optional(),
  internal_batch: internalBatchParam,
}).strict();

/** Parsed parameters of `activation-max`. */
export type ActivationMaxParams = z.infer<typeof activationMaxParams>;

interface Term {
  kind: ObjectiveKind;
  of: string;
  /** Unit of each row. */
  units: number[];
  x?: number;
  y?: number;
  weight: number;
}

/** Per-row value of `term` on `value` (`[N,…]` of its tensor); adds weight·∂/∂value to `seed`. */
function evalTerm(term: Term, value: Tensor, seed: Float32Array | undefined): number[] {
  const n = value.dims[0];
  const per = value.data.length / n;
  const c = value.dims[1];
  const hw = per / c;
  const w = value.dims.length === 4 ? value.dims[3] : 1;
  const h = hw / w;
  const out: number[] = [];
  for (let r = 0; r < n; r++) {
    const a = value.data.subarray(r * per, (r + 1) * per);
    const s = seed?.subarray(r * per, (r + 1) * per);
    const u = term.units[r];
    if (term.kind !== "layer" && !(u < c)) {
      throw new ParamError(
        term.kind === "logit" || term.kind === "probability" ? "target" : "channel",
        `Cannot maximize ${term.kind} ${u}: tensor '${term.of}' has ${c} (0–${c - 1})`,
      );
    }
    let v = 0;
    if (term.kind === "channel") {
      for (let i = 0; i < hw; i++) v += a[u * hw + i];
      v /= hw;
      if (s) { for (let i = 0; i < hw; i++) s[u * hw + i] += term.weight / hw; }
    } else if (term.kind === "neuron") {
      const x = Math.min(term.x ?? Math.floor(w / 2), w - 1);
      const y = Math.min(term.y ?? Math.floor(h / 2), h - 1);
      v = a[u * hw + y * w + x];
      if (s) s[u * hw + y * w + x] += term.weight;
    } else if (term.kind === "layer") {
      for (let i = 0; i < per; i++) v += a[i] * a[i];
      v /= per;
      if (s) { for (let i = 0; i < per; i++) s[i] += (term.weight * 2 * a[i]) / per; }
    } else if (term.kind === "logit") {
      v = a[u];
      if (s) s[u] += term.weight;
    } else {
      const p = softmaxOf(a);
      v = p(u);
      // ∂p_u/∂z_i = p_u(δ_ui − p_i)
      if (s) { for (let i = 0; i < per; i++) s[i] += term.weight * v * ((i === u ? 1 : 0) - p(i)); }
    }
    out.push(v);
  }
  return out;
}

/**
 * Lucid's `diversity(layer)`: with Gᵢ = AᵢAᵢᵀ (channel Gram matrix of row i) normalized to unit
 * Frobenius norm, D = (1/N) Σᵢ Σ_{j≠i} ⟨Ĝᵢ, Ĝⱼ⟩. Returns D; adds weight·∂D/∂A to `options.seed`.
 */
export function diversityTerm(
  value: Tensor,
  options: { seed?: Float32Array; weight?: number } = {},
): number {
  const { seed, weight = 1 } = options;
  const n = value.dims[0], c = value.dims[1];
  const per = value.data.length / n, hw = per / c;
  const grams: Float64Array[] = [], norms: number[] = [];
  for (let r = 0; r < n; r++) {
    const a = value.data.subarray(r * per, (r + 1) * per);
    const g = new Float64Array(c * c);
    for (let i = 0; i < c; i++) {
      for (let j = i; j < c; j++) {
        let acc = 0;
        for (let p = 0; p < hw; p++) acc += a[i * hw + p] * a[j * hw + p];
        g[i * c + j] = g[j * c + i] = acc;
      }
    }
    let norm = 0;
    for (const v of g) norm += v * v;
    norm = Math.max(Math.sqrt(norm), 1e-10);
    for (let i = 0; i < g.length; i++) g[i] /= norm;
    grams.push(g);
    norms.push(norm);
  }
  const sum = new Float64Array(c * c);
  for (const g of grams) for (let i = 0; i < sum.length; i++) sum[i] += g[i];
  let total = 0;
  for (const v of sum) total += v * v;
  for (const g of grams) for (const v of g) total -= v * v;
  const d = total / n;
  if (seed) {
    for (let r = 0; r < n; r++) {
      const g = grams[r];
      // ∂D/∂Ĝ = (2/N)(S − Ĝ); through the normalization: (gu − Ĝ⟨Ĝ, gu⟩)/‖G‖; ∂/∂A = (dG + dGᵀ)A.
      const gu = new Float64Array(c * c);
      let dot = 0;
      for (let i = 0; i < gu.length; i++) {
        gu[i] = (2 / n) * (sum[i] - g[i]);
        dot += gu[i] * g[i];
      }
      for (let i = 0; i < gu.length; i++) gu[i] = (gu[i] - g[i] * dot) / norms[r];
      const a = value.data.subarray(r * per, (r + 1) * per);
      const s = seed.subarray(r * per, (r + 1) * per);
      for (let i = 0; i < c; i++) {
        for (let j = 0; j < c; j++) {
          const k = weight * (gu[i * c + j] + gu[j * c + i]);
          if (k === 0) continue;
          for (let p = 0; p < hw; p++) s[i * hw + p] += k * a[j * hw + p];
        }
      }
    }
  }
  return d;
}

function unitsOf(params: ActivationMaxParams): number[] {
  const classObjective = params.objective === "logit" || params.objective === "probability";
  if (params.channels !== undefined) {
    return typeof params.channels === "number"
      ? Array.from({ length: params.channels }, (_, i) => i)
      : params.channels;
  }
  const unit = classObjective ? params.target : params.channel ?? 0;
  if (Array.isArray(unit)) return unit;
  return new Array(params.batch).fill(unit);
}

// Outside the async `run`, whose loops the engine would not optimize.
function addInto(acc: Float32Array, g: Float32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] += g[i];
}

/** Activation maximization with Lucid's parameterization, transformations and optimizer. */
export const activationMax = defineMethod({
  name: "activation-max",
  description: "Synthesize the image a unit most wants to see (Olah et al. 2017), [N,3,H,W]",
  params: activationMaxParams,
  synthesizesInput: true,
  async run(input, params) {
    const { model, progress } = input;
    const [, ch] = model.inputShape;
    const [h, w] = params.size === undefined
      ? model.inputShape.slice(2)
      : typeof params.size === "number"
      ? [params.size, params.size]
      : params.size;
    if (model.inputShape.length !== 4 || ch !== 3 || !(h > 0) || !(w > 0)) {
      throw new ParamError(
        "size",
        `Cannot synthesize an input for model ${model.name}: its input shape [${model.inputShape}] is not a fixed [N,3,H,W] (set size for dynamic ones)`,
      );
    }
    const units = unitsOf(params);
    const n = units.length;
    const needsLayer = (k: ObjectiveKind) => k === "channel" || k === "neuron" || k === "layer";
    const layerName = async (layer: string | undefined) => (await resolveLayer(model, layer)).name;
    const terms: Term[] = [];
    const mainLayer = needsLayer(params.objective) || params.diversity > 0
      ? await layerName(params.layer)
      : undefined;
    terms.push({
      kind: params.objective,
      of: needsLayer(params.objective) ? mainLayer! : model.outputName,
      units,
      x: params.x,
      y: params.y,
      weight: 1,
    });
    for (const t of params.terms) {
      terms.push({
        kind: t.objective,
        of: needsLayer(t.objective) ? await layerName(t.layer ?? params.layer) : model.outputName,
        units: new Array(n).fill(t.unit),
        x: t.x,
        y: t.y,
        weight: t.weight,
      });
    }
    const diversityOf = params.diversity > 0
      ? await layerName(params.diversity_layer ?? mainLayer)
      : undefined;
    const tensors = [
      ...new Set([...terms.map((t) => t.of), ...(diversityOf ? [diversityOf] : [])]),
    ];

    const hw = h * w, per = 3 * hw;
    const norm = modelNormalization(model);
    const param = imageParameterization({
      h,
      w,
      kind: params.parameterization,
      decorrelate: params.decorrelate,
      decayPower: params.decay_power,
    });
    const random = new Random(params.seed);
    const theta = new Float32Array(n * param.size);
    for (let r = 0; r < n; r++) {
      param.init(theta.subarray(r * param.size, (r + 1) * param.size), random);
    }
    const adam = new Adam(theta.length, { lr: params.lr });
    const rgb = new Float32Array(n * per);
    const seen = new Float32Array(n * per);
    const x = new Float32Array(n * per);
    const gX = new Float32Array(n * per);
    const gRgb = new Float32Array(n * per);
    const gSeen = new Float32Array(per);
    const gTheta = new Float32Array(theta.length);
    const affines: Affine[] = new Array(n).fill(IDENTITY);

    const render = (transform: boolean) => {
      for (let r = 0; r < n; r++) {
        const img = rgb.subarray(r * per, (r + 1) * per);
        param.forward(theta.subarray(r * param.size, (r + 1) * param.size), img);
        affines[r] = transform ? randomAffine(random, { h, w }) : IDENTITY;
        const out = seen.subarray(r * per, (r + 1) * per);
        if (transform) sampleAffine(img, out, { c: 3, h, w, affine: affines[r], fill: 0.5 });
        else out.set(img);
      }
      for (let i0 = 0; i0 < n * per; i0 += hw) {
        const c = (i0 / hw) % 3, gain = norm.gain, mean = norm.mean[c], std = norm.std[c];
        for (let i = i0; i < i0 + hw; i++) x[i] = (seen[i] * gain - mean) / std;
      }
      return tensor(x.slice(), [n, 3, h, w]);
    };

    // Objective (and optionally its input gradient) of the current `x`, one pass per tensor.
    const objective = async (xt: Tensor, withGrad: boolean) => {
      const values = new Array(n).fill(0);
      let diversity = 0;
      if (withGrad) gX.fill(0);
      for (const of of tensors) {
        const group = terms.filter((t) => t.of === of);
        const valueFirst = group.some((t) => t.kind === "layer" || t.kind === "probability") ||
          of === diversityOf;
        let value: Tensor | undefined;
        if (valueFirst || !withGrad) value = (await model.run(xt, { outputs: [of] }))[of];
        if (!withGrad) {
          for (const t of group) {
            evalTerm(t, value!, undefined).forEach((v, r) => values[r] += t.weight * v);
          }
          if (of === diversityOf) diversity = diversityTerm(value!);
          continue;
        }
        // Linear terms: the seed does not depend on the value, so one pass gives both.
        value ??= tensor(new Float32Array(n * sizeOf(shapes[of])), [n, ...shapes[of]]);
        const seed = new Float32Array(value.data.length);
        for (const t of group) evalTerm(t, value, seed);
        if (of === diversityOf) {
          diversity = diversityTerm(value, { seed, weight: -params.diversity });
        }
        const res = await gradients(model, { input: xt, seed: tensor(seed, value.dims) }, {
          of,
          batchSize: params.internal_batch,
        });
        for (const t of group) {
          evalTerm(t, res.output, undefined).forEach((v, r) => values[r] += t.weight * v);
        }
        addInto(gX, res.grads[0].data);
      }
      return values.map((v) => v - params.diversity * diversity);
    };

    // ∂objective/∂θ from gX, through the normalization, T and P (sync, unlike the async body of
    // `run`, so that its loops get optimized), negated because Adam minimizes.
    const pullBack = () => {
      for (let r = 0; r < n; r++) {
        const off = r * per;
        for (let c = 0; c < 3; c++) {
          const gain = norm.gain, std = norm.std[c];
          for (let i = c * hw; i < (c + 1) * hw; i++) gSeen[i] = (gX[off + i] * gain) / std;
        }
        const gImg = gRgb.subarray(off, off + per);
        sampleAffineAdjoint(gSeen, gImg, { c: 3, h, w, affine: affines[r] });
        penalize(rgb.subarray(off, off + per), gImg, { h, w, ...params });
        param.backward(
          rgb.subarray(off, off + per),
          gImg,
          gTheta.subarray(r * param.size, (r + 1) * param.size),
        );
      }
      for (let i = 0; i < gTheta.length; i++) gTheta[i] = -gTheta[i];
    };

    const start = render(false);
    const probe = await model.run(tensor(start.data.slice(0, per), [1, 3, h, w]), {
      outputs: tensors,
    });
    const shapes = Object.fromEntries(tensors.map((t) => [t, probe[t].dims.slice(1)]));
    const initial = await objective(start, false);
    const curve: number[][] = Array.from({ length: n }, () => []);
    const t0 = performance.now();
    for (let step = 0; step < params.steps; step++) {
      const xt = render(params.transforms === "standard");
      const values = await objective(xt, true);
      values.forEach((v, r) => curve[r].push(v));
      pullBack();
      adam.step(theta, gTheta);
      progress?.(step + 1, params.steps, "activation-max");
    }
    const optimize = since(t0);
    const final = render(false);
    const finalValues = await objective(final, false);
    const info: Record<string, unknown> = {
      objective: curve,
      initial,
      final: finalValues,
      units,
      steps_per_second: params.steps / (optimize / 1000),
      parameterization: params.parameterization,
    };
    if (params.objective === "logit" || params.objective === "probability") {
      const logits = (await model.run(final))[model.outputName];
      const k = logits.dims[1];
      info.probability = units.map((u, r) => {
        return softmaxOf(logits.data.subarray(r * k, (r + 1) * k))(u);
      });
    }
    const names = input.batch.names.length;
    return explanation(model, {
      method: "activation-max",
      rows: { targets: units, images: units.map((_, r) => (names === n ? r : 0)) },
      map: final,
      space: "input",
      layer: mainLayer,
      timings: { optimize },
      info,
    });
  },
});

/** Weights of the image penalties. */
export interface Penalties {
  /** Image height. */
  h: number;
  /** Image width. */
  w: number;
  /** Weight of Σ|x − ½|. */
  l1: number;
  /** Weight of √Σ(x − ½)². */
  l2: number;
  /** Weight of the total variation Σ|∇x|. */
  tv: number;
  /** Weight of ½Σ(x − stop_gradient(blur x))². */
  blur: number;
}

/**
 * The penalty l1·Σ|x−½| + l2·√Σ(x−½)² + tv·TV(x) + blur·½Σ(x − B x)² of one image `[3,h,w]`; when
 * `g` is given, subtracts its gradient from `g` (the objective is maximized), with B held fixed
 * as Lucid's stop-gradient.
 */
export function penalize(
  img: Float32Array,
  g: Float32Array | undefined,
  options: Penalties,
): number {
  const { h, w, l1, l2, tv, blur } = options;
  let value = 0;
  if (blur > 0) {
    // B is Lucid's 3×3 kernel renormalized at the borders.
    const k = [0.5, 1, 0.5, 1, 1, 1, 0.5, 1, 0.5];
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let acc = 0, norm = 0;
          for (let dy = -1; dy <= 1; dy++) {
            for (let dx = -1; dx <= 1; dx++) {
              const yy = y + dy, xx = x + dx;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              const kv = k[(dy + 1) * 3 + dx + 1];
              acc += kv * img[c * h * w + yy * w + xx];
              norm += kv;
            }
          }
          const i = c * h * w + y * w + x;
          const d = img[i] - acc / norm;
          value += blur * 0.5 * d * d;
          if (g) g[i] -= blur * d;
        }
      }
    }
  }
  if (l1 > 0) {
    for (let i = 0; i < img.length; i++) {
      value += l1 * Math.abs(img[i] - 0.5);
      if (g) g[i] -= l1 * Math.sign(img[i] - 0.5);
    }
  }
  if (l2 > 0) {
    let s = 1e-6;
    for (const v of img) s += (v - 0.5) ** 2;
    value += l2 * Math.sqrt(s);
    const k = l2 / Math.sqrt(s);
    if (g) { for (let i = 0; i < img.length; i++) g[i] -= k * (img[i] - 0.5); }
  }
  if (tv > 0) {
    for (let c = 0; c < 3; c++) {
      const o = c * h * w;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const i = o + y * w + x;
          for (const j of [x + 1 < w ? i + 1 : -1, y + 1 < h ? i + w : -1]) {
            if (j < 0) continue;
            value += tv * Math.abs(img[j] - img[i]);
            if (!g) continue;
            const s = tv * Math.sign(img[j] - img[i]);
            g[j] -= s;
            g[i] += s;
          }
        }
      }
    }
  }
  return value;
}
