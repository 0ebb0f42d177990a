/**
 * The Adam optimizer (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization",
 * https://arxiv.org/abs/1412.6980, Algorithm 1), with TensorFlow's defaults as Lucid uses them.
 *
 * @module
 */

/** Options of {@linkcode Adam}. */
export interface AdamOptions {
  /** Step size α (Lucid: 0.05). */
  lr?: number;
  /** First-moment decay β₁ (0.9). */
  beta1?: number;
  /** Second-moment decay β₂ (0.999). */
  beta2?: number;
  /** ε added to √v̂ (TensorFlow's default 1e-8). */
  epsilon?: number;
}

/** Adam state for one parameter vector; `step` minimizes (negate the gradient to maximize). */
export class Adam {
  readonly #m: Float64Array;
  readonly #v: Float64Array;
  readonly #lr: number;
  readonly #b1: number;
  readonly #b2: number;
  readonly #eps: number;
  #t = 0;

  /** State for `size` parameters. */
  constructor(size: number, options: AdamOptions = {}) {
    this.#m = new Float64Array(size);
    this.#v = new Float64Array(size);
    this.#lr = options.lr ?? 0.05;
    this.#b1 = options.beta1 ?? 0.9;
    this.#b2 = options.beta2 ?? 0.999;
    this.#eps = options.epsilon ?? 1e-8;
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.#t;
  }

  /** θ ← θ − α·m̂/(√v̂ + ε) with the bias-corrected moments of `grad`. */
  step(param: Float32Array, grad: Float32Array): void {
    this.#t++;
    const b1 = this.#b1, b2 = this.#b2;
    const c1 = 1 - Math.pow(b1, this.#t), c2 = 1 - Math.pow(b2, this.#t);
    const m = this.#m, v = this.#v, lr = this.#lr, eps = this.#eps;
    for (let i = 0; i < param.length; i++) {
      const g = grad[i];
      const mi = m[i] = b1 * m[i] + (1 - b1) * g;
      const vi = v[i] = b2 * v[i] + (1 - b2) * g * g;
      param[i] -= (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
    }
  }
}
