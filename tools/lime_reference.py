"""Independent numpy reimplementation of LIME's surrogate fit, for tests/lime_test.ts.

Reads the LIME problem that tools/lime_dump.ts wrote (the 0/1 sample matrix `z.npy` of the
shared MobileNetV2 on chelsea and the top-1 probabilities `y.npy`) and recomputes what
`lime_image.LimeImageExplainer.explain_instance` and `LimeBase.explain_instance_with_data`
(lime 0.2.0.1) compute from them, without scikit-learn (not installed here):

  distances = pairwise_distances(z, z[0], metric="cosine")  (a zero row is at distance 1)
  weights   = sqrt(exp(-distances**2 / 0.25**2))             (LimeImageExplainer's kernel)
  features  = feature_selection(z, y, weights, K, method)     (LimeBase.feature_selection)
  surrogate = Ridge(alpha=1).fit(z[:, features], y, sample_weight=weights)

Ridge with sample weights and an intercept is solved as scikit-learn does it: centre on the
weighted means, scale rows by sqrt(weight), solve (Xc^T Xc + alpha I) b = Xc^T yc. The lasso path
comes from the independent homotopy of tools/make_lasso_fixtures.py.

    /usr/bin/python3 tools/lime_reference.py [DIR]   # default tests/fixtures/lime

Writes DIR/lime_ref.npy: one row per case of CASES, [coef (one per superpixel, 0 when not
selected), intercept, score, local_pred].
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_lasso_fixtures import lasso_homotopy  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# (feature_selection, num_features); 0 means all superpixels (lime_image's num_features=100000).
CASES = [("auto", 0), ("highest_weights", 5), ("forward_selection", 5), ("lasso_path", 5),
         ("lasso_path", 10), ("none", 0)]


def ridge(x, y, w, alpha):
    xm = np.average(x, axis=0, weights=w)
    ym = np.average(y, weights=w)
    sw = np.sqrt(w)
    xc = (x - xm) * sw[:, None]
    yc = (y - ym) * sw
    coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    intercept = ym - xm @ coef
    pred = x @ coef + intercept
    score = 1 - (w @ (y - pred) ** 2) / (w @ (y - ym) ** 2)
    return coef, intercept, score


def select(z, y, w, k, method):
    d = z.shape[1]
    if method == "auto":
        method = "forward_selection" if k <= 6 else "highest_weights"
    if method == "none":
        return list(range(d))
    if method == "highest_weights":
        coef, _, _ = ridge(z, y, w, 0.01)
        ranked = sorted(zip(range(d), coef * z[0]), key=lambda t: abs(t[1]), reverse=True)
        return [j for j, _ in ranked[:k]]
    if method == "forward_selection":
        used = []
        for _ in range(min(k, d)):
            best, top = 0, -1e8
            for j in range(d):
                if j in used:
                    continue
                _, _, score = ridge(z[:, used + [j]], y, w, 0.0)
                if score > top:
                    best, top = j, score
            used.append(best)
        return used
    if method == "lasso_path":
        x = (z - np.average(z, axis=0, weights=w)) * np.sqrt(w)[:, None]
        t = (y - np.average(y, weights=w)) * np.sqrt(w)
        _, coefs, _ = lasso_homotopy(x, t)
        nonzero = list(range(d))
        for i in range(len(coefs) - 1, 0, -1):
            nonzero = list(coefs[i].nonzero()[0])
            if len(nonzero) <= k:
                break
        return nonzero
    raise ValueError(method)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "lime")
    z = np.load(os.path.join(out, "z.npy")).astype(np.float64)
    y = np.load(os.path.join(out, "y.npy")).astype(np.float64)
    d = z.shape[1]
    norms = np.linalg.norm(z, axis=1) * np.linalg.norm(z[0])
    cos = np.divide(z @ z[0], norms, out=np.zeros(len(z)), where=norms > 0)
    w = np.sqrt(np.exp(-(1 - cos) ** 2 / 0.25 ** 2))
    rows = []
    for method, k in CASES:
        used = select(z, y, w, k if k else 100000, method)
        coef, intercept, score = ridge(z[:, used], y, w, 1.0)
        full = np.zeros(d)
        full[used] = coef
        local_pred = intercept + z[0, used] @ coef
        rows.append(np.concatenate([full, [intercept, score, local_pred]]))
        top = np.argsort(-full)[:3]
        print(method, k or "all", "selected", sorted(used)[:12], "top-3", list(top),
              "R2 %.4f" % score)
    np.save(os.path.join(out, "lime_ref.npy"), np.array(rows))


if __name__ == "__main__":
    main()
