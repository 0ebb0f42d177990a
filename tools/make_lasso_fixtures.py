"""Reference lasso paths for tests/lime_test.ts (kernels/lasso_path.ts).

scikit-learn is not installed in Debian's python here, so the reference is an independent numpy
implementation of the lasso homotopy (Osborne, Presnell & Turlach 2000; Efron et al. 2004,
section 3.1), written from the optimality conditions rather than from scikit-learn's code: at
every breakpoint the correlations c = X^T (y - X beta) are recomputed from the residual, the
active coefficients move along (X_A^T X_A)^-1 sign(c_A), and the next event is the nearest join
(|c_j| reaching the active level) or zero crossing. Every breakpoint is then checked against the
lasso's KKT conditions, (1/n) X^T (y - X beta) = alpha * sign(beta) on the support and
|(1/n) x_j^T (y - X beta)| <= alpha elsewhere. Alphas are scaled by 1/n as lars_path does.

Run with Debian's python (numpy only):

    /usr/bin/python3 tools/make_lasso_fixtures.py

Writes tests/fixtures/lime/:
  lasso_{z,y,w}.npy        a LIME-like problem: LIME's kernel weights w of binary rows (the first
                           all ones), a design z whose columns mix neighbouring binary columns (so
                           variables leave the path again) and a target y
  lasso_{x,t}.npy          the design and target as LIME's lasso_path selection prepares them:
                           centred on their w-weighted means, rows scaled by sqrt(w)
  lasso_{alphas,coefs}.npy the breakpoints of the lasso path of t on x
  lasso_select.npy         row K-1: 0/1 per column, the columns LIME's lasso_path selection keeps
                           for num_features = K (the last breakpoint with <= K nonzero
                           coefficients, scanning back to the second breakpoint)
"""
import os

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "lime")


def lasso_homotopy(x, y):
    n, p = x.shape
    beta = np.zeros(p)
    c = x.T @ y
    lam = np.abs(c).max()
    active = [int(np.argmax(np.abs(c)))]
    alphas, coefs, drops = [lam / n], [beta.copy()], 0
    left = -1
    while lam > 1e-12 * max(1.0, alphas[0] * n):
        c = x.T @ (y - x @ beta)
        s = np.sign(c[active])
        xa = x[:, active]
        d = np.linalg.solve(xa.T @ xa, s)
        a = x.T @ (xa @ d)
        t_best, event, who = lam, "end", -1
        for j in range(p):
            # A column that just left sits exactly at the active level: it may not rejoin at once.
            if j in active or j == left:
                continue
            for t in ((lam - c[j]) / (1 - a[j]), (lam + c[j]) / (1 + a[j])):
                if 1e-14 < t < t_best:
                    t_best, event, who = t, "join", j
        for k, j in enumerate(active):
            if d[k] != 0:
                t = -beta[j] / d[k]
                if 1e-14 < t < t_best:
                    t_best, event, who = t, "leave", j
        beta[active] += t_best * d
        lam -= t_best
        left = -1
        if event == "join":
            active.append(who)
        elif event == "leave":
            beta[who] = 0.0
            active.remove(who)
            left = who
            drops += 1
        alphas.append(max(lam, 0.0) / n)
        coefs.append(beta.copy())
        if event == "end" or len(active) == 0:
            break
    return np.array(alphas), np.array(coefs), drops


def check_kkt(x, y, alphas, coefs):
    n = x.shape[0]
    worst = 0.0
    for alpha, beta in zip(alphas, coefs):
        g = x.T @ (y - x @ beta) / n
        on = beta != 0
        worst = max(worst, np.abs(g[on] - alpha * np.sign(beta[on])).max(initial=0))
        worst = max(worst, (np.abs(g[~on]) - alpha).max(initial=0))
    return worst


def lime_like(seed, n=60, p=10):
    rng = np.random.RandomState(seed)
    z = (rng.rand(n, p) > 0.5).astype(np.float64)
    z[0] = 1
    on = z.sum(1)
    dist = 1 - on / np.sqrt(on * p + 1e-300)
    w = np.sqrt(np.exp(-dist ** 2 / 0.25 ** 2))
    # Correlated columns with effects of both signs, so variables leave the path again: column
    # j also copies a random share of columns j-1 and j-2.
    mix = z.copy()
    for j in range(2, p):
        mix[:, j] = z[:, j] + rng.rand() * z[:, j - 1] + rng.rand() * z[:, j - 2]
    z = mix
    beta = rng.randn(p) * (rng.rand(p) > 0.3)
    y = z @ beta + 0.5 * rng.randn(n)
    return z, y, w


def lime_select(coefs, count):
    p = coefs.shape[1]
    nonzero = np.arange(p)
    for i in range(len(coefs) - 1, 0, -1):
        nonzero = coefs[i].nonzero()[0]
        if len(nonzero) <= count:
            break
    out = np.zeros(p)
    out[nonzero] = 1
    return out


def f32(a):
    # The fixtures are read back as float32, so the references are computed from those values.
    return a.astype(np.float32).astype(np.float64)


def main():
    os.makedirs(OUT, exist_ok=True)
    for seed in range(200):
        z, y, w = (f32(a) for a in lime_like(seed))
        x = f32((z - np.average(z, axis=0, weights=w)) * np.sqrt(w)[:, None])
        t = f32((y - np.average(y, weights=w)) * np.sqrt(w))
        alphas, coefs, drops = lasso_homotopy(x, t)
        if drops >= 1:
            break
    kkt = check_kkt(x, t, alphas, coefs)
    assert kkt < 1e-10, kkt
    print("seed", seed, "breakpoints", len(alphas), "drops", drops, "kkt", kkt)
    # LIME's selection prepares the data itself, in float64 from the float32 fixture values.
    xs = (z - np.average(z, axis=0, weights=w)) * np.sqrt(w)[:, None]
    ts = (y - np.average(y, weights=w)) * np.sqrt(w)
    _, coefs_s, _ = lasso_homotopy(xs, ts)
    select = np.array([lime_select(coefs_s, k) for k in range(1, z.shape[1] + 1)])
    print("selected per K:", select.sum(1))
    for key, value in [("z", z), ("y", y), ("w", w), ("x", x), ("t", t), ("alphas", alphas),
                       ("coefs", coefs), ("select", select)]:
        np.save(os.path.join(OUT, "lasso_%s.npy" % key), value.astype(np.float64))


if __name__ == "__main__":
    main()
