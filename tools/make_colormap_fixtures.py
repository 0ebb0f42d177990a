#!/usr/bin/python3
"""Make the reference fixtures of the render kernels, and the colormap tables they embed.

Run with Debian's Python (it has matplotlib and torch), from the repository root:

    /usr/bin/python3 tools/make_colormap_fixtures.py

It writes:

* tests/fixtures/render/colormaps.json: each colormap's 256-entry uint8 LUT,
  `(cmap(np.linspace(0, 1, 256))[:, :3] * 255).round()`, and matplotlib's colours `cmap(x)`
  (rounded the same way) of float32 samples (edges, out-of-range values), which checks which
  entry each value picks.
* tests/fixtures/render/upsample.json: `torch.nn.functional.interpolate` results
  (bilinear with and without align_corners, nearest) on small random arrays. Outputs larger
  than a few thousand values keep only a strided subset of rows and columns so the fixture
  stays small.
* tests/fixtures/render/p99.json: Captum's `_cumulative_sum_threshold` (copied below from
  captum/attr/_utils/visualization.py, BSD-3) on random arrays, for the `p99` normalization.
* the table block of kernels/colormap.ts between its `BEGIN TABLES` / `END TABLES` markers.
"""
import base64
import json
import os
import re

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "render")
TS = os.path.join(ROOT, "kernels", "colormap.ts")
NAMES = ["jet", "viridis", "inferno", "turbo", "gray", "coolwarm", "RdBu_r"]


def f32(values):
    """Float32 values as the shortest decimals that read back as the same float32."""
    return [float(str(np.float32(v))) for v in np.asarray(values, np.float32).ravel()]


def lut(name):
    cmap = matplotlib.colormaps[name]
    return (cmap(np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def colormaps():
    rng = np.random.default_rng(1)
    samples = np.concatenate([
        np.array([0, 1, 0.5, 1 / 256, 255 / 256, 0.999999, -0.25, 1.5, 127.5 / 255], np.float32),
        rng.random(55, dtype=np.float32),
    ]).astype(np.float32)
    out = {"samples": f32(samples), "maps": {}}
    for name in NAMES:
        cmap = matplotlib.colormaps[name]
        out["maps"][name] = {
            "lut": lut(name).tolist(),
            # Matplotlib's float colours rounded like the LUT (its `bytes=True` truncates instead).
            "rgba": (cmap(samples) * 255).round().astype(np.uint8).tolist(),
        }
    return out


def sample(arr, step, extra=((), ())):
    """Rows and columns 0, step, 2*step, ... of the last two axes, the last ones, and extras."""
    h, w = arr.shape[-2:]
    rows = sorted(set(range(0, h, step)) | {h - 1} | set(extra[0]))
    cols = sorted(set(range(0, w, step)) | {w - 1} | set(extra[1]))
    return rows, cols, arr[..., rows, :][..., cols]


def upsample():
    torch.manual_seed(0)
    cases = [
        # name, input dims, output size, mode, align_corners, sampling step (1 = all)
        ("bilinear 7x7 to 224x224", (1, 2, 7, 7), (224, 224), "bilinear", False, 5),
        ("bilinear 5x3 to 17x11", (2, 1, 5, 3), (17, 11), "bilinear", False, 1),
        ("bilinear 5x3 to 17x11 align_corners", (1, 1, 5, 3), (17, 11), "bilinear", True, 1),
        ("bilinear 17x11 to 5x3", (1, 1, 17, 11), (5, 3), "bilinear", False, 1),
        ("bilinear 1x1 to 4x6", (1, 1, 1, 1), (4, 6), "bilinear", False, 1),
        ("nearest 7x7 to 224x224", (1, 1, 7, 7), (224, 224), "nearest", None, 5),
        ("nearest 5x3 to 17x11", (1, 2, 5, 3), (17, 11), "nearest", None, 1),
        ("nearest 3x7 to 9x21", (1, 1, 3, 7), (9, 21), "nearest", None, 1),
        ("nearest 17x11 to 5x3", (1, 1, 17, 11), (5, 3), "nearest", None, 1),
        ("nearest 6x10 to 13x33", (1, 1, 6, 10), (13, 33), "nearest", None, 1),
        # Row 37 and column 41 are where float32 index arithmetic (torch's) and exact arithmetic
        # pick different source pixels.
        ("nearest 6x4 to 74x82", (1, 1, 6, 4), (74, 82), "nearest", None, 9, ((37,), (41,))),
    ]
    out = []
    for name, dims, size, mode, align, step, *extra in cases:
        x = torch.randn(dims, dtype=torch.float32)
        kw = {"align_corners": align} if mode == "bilinear" else {}
        y = F.interpolate(x, size=size, mode=mode, **kw).numpy()
        rows, cols, ys = sample(y, step, *extra)
        out.append({
            "name": name,
            "mode": mode,
            "alignCorners": bool(align),
            "dims": list(dims),
            "size": list(size),
            "input": f32(x.numpy()),
            "rows": rows,
            "cols": cols,
            "expected": f32(ys),
        })
    return out


def _cumulative_sum_threshold(values, percentile):
    # Captum's own code, so the fixture is Captum's definition rather than a paraphrase of it.
    assert percentile >= 0 and percentile <= 100, (
        "Percentile for thresholding must be " "between 0 and 100 inclusive."
    )
    sorted_vals = np.sort(values.flatten())
    cum_sums = np.cumsum(sorted_vals)
    threshold_id = np.where(cum_sums >= cum_sums[-1] * 0.01 * percentile)[0][0]
    return sorted_vals[threshold_id]


def p99():
    rng = np.random.default_rng(2)
    out = []
    for n in (50, 400):
        x = (rng.standard_normal(n) ** 3).astype(np.float32)
        threshold = _cumulative_sum_threshold(np.abs(x), 99)
        norm = np.clip(np.abs(x) / threshold, -1, 1)
        out.append({
            "input": f32(x),
            "threshold": f32([threshold])[0],
            "expected": f32(norm),
        })
    return out


def write_tables():
    lines = ["// BEGIN TABLES (generated by tools/make_colormap_fixtures.py; do not edit)"]
    lines.append("const TABLES: Record<ColormapName, string> = {")
    for name in NAMES:
        b64 = base64.b64encode(lut(name).tobytes()).decode()
        key = name if re.fullmatch(r"[a-z]+", name) else json.dumps(name)
        chunks = [b64[i:i + 88] for i in range(0, len(b64), 88)]
        # Laid out as `deno fmt` would (line width 100), so formatting leaves it unchanged.
        if len(f'  {key}: "{chunks[0]}" +') > 100:
            lines.append(f"  {key}:")
            lead = "    "
        else:
            lead = f"  {key}: "
        for i, chunk in enumerate(chunks):
            end = "," if i == len(chunks) - 1 else " +"
            lines.append(f'{lead if i == 0 else "    "}"{chunk}"{end}')
    lines.append("};")
    lines.append("// END TABLES")
    block = "\n".join(lines)
    with open(TS) as f:
        src = f.read()
    new, count = re.subn(r"// BEGIN TABLES.*?// END TABLES", lambda _: block, src, flags=re.S)
    if count != 1:
        raise SystemExit(f"{TS} has no BEGIN TABLES / END TABLES block")
    with open(TS, "w") as f:
        f.write(new)


def dump(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    dump("colormaps.json", colormaps())
    dump("upsample.json", upsample())
    dump("p99.json", p99())
    write_tables()


if __name__ == "__main__":
    main()
