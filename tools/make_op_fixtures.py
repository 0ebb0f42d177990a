#!/usr/bin/python3
"""Generate single-op (or few-op) torch references for the differentiator, under tests/fixtures/ops/.

Run with Debian's Python (torch 1.13, onnx 1.12):

    /usr/bin/python3 tools/make_op_fixtures.py

Each case is a tiny torch module exported to ONNX (float32), an input `x`, a seed `dL/dy` and the
gradient `dL/dx` computed by torch in float64 with the standard backward, plus guided-backprop
and deconvnet gradients where the case has ReLU-like ops. Inputs are chosen to hit the corners
finite differences cannot check: MaxPool windows with ties (all-zero windows after a ReLU,
repeated values), ceil_mode windows, values exactly at ReLU6/Hardswish/Hardsigmoid kinks.

Files per case: <case>.onnx, <case>.x.npy, <case>.seed.npy, <case>.grad.npy
(+ <case>.guided.npy, <case>.deconv.npy); manifest.json lists cases, opsets and descriptions.
Deterministic: fixed torch.Generator seeds.
"""

import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "fixtures", "ops")


class ReluRule(torch.autograd.Function):
    """ReLU-like op (min 0, optional max) whose backward follows a rule."""

    @staticmethod
    def forward(ctx, x, upper, mode):
        ctx.save_for_backward(x)
        ctx.upper, ctx.mode = upper, mode
        return x.clamp(0, upper) if upper is not None else x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        mask = (x > 0) if ctx.upper is None else (x > 0) & (x < ctx.upper)
        if ctx.mode == "deconvnet":
            return g.clamp(min=0), None, None
        if ctx.mode == "guided":
            return g.clamp(min=0) * mask, None, None
        return g * mask, None, None


class Act(nn.Module):
    """ReLU (upper=None) or ReLU6 (upper=6) that exports as Relu / Clip and follows a rule."""

    mode = "standard"

    def __init__(self, upper=None):
        super().__init__()
        self.upper = upper

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return F.relu(x) if self.upper is None else F.relu6(x)
        return ReluRule.apply(x, self.upper, Act.mode)


def quantized(shape, gen, step=0.5, lo=-2.0, hi=2.0):
    """Values on a coarse grid: many exact ties and exact zeros after a ReLU."""
    v = torch.randint(int(lo / step), int(hi / step) + 1, shape, generator=gen).double() * step
    return v


def cases():
    gen = torch.Generator().manual_seed(1234)
    out = []

    def add(name, module, x, opset, note, relu=False):
        out.append((name, module, x, opset, note, relu))

    add("maxpool_ties_pad", nn.Sequential(Act(), nn.MaxPool2d(3, 2, padding=1)),
        quantized((2, 3, 9, 10), gen), 13,
        "ReLU then overlapping MaxPool k3 s2 p1 on a coarse grid: all-zero windows and ties", True)
    add("maxpool_ties_ceil", nn.Sequential(Act(), nn.MaxPool2d(3, 2, ceil_mode=True)),
        quantized((2, 3, 10, 9), gen), 11,
        "ReLU then MaxPool k3 s2 ceil_mode (SqueezeNet/GoogLeNet style) with ties", True)
    add("maxpool_ceil_drop", nn.Sequential(Act(), nn.MaxPool2d(2, 3, padding=1, ceil_mode=True)),
        quantized((1, 2, 8, 7), gen), 13,
        "MaxPool k2 s3 p1 ceil_mode whose last ceil window would start in the padding", True)
    add("maxpool_dilated", nn.Sequential(Act(), nn.MaxPool2d(3, 1, padding=1, dilation=2)),
        quantized((1, 2, 7, 8), gen), 13, "ReLU then dilated MaxPool with ties", True)
    add("relu6_kinks", nn.Sequential(Act(6.0), nn.MaxPool2d(2, 2)),
        quantized((2, 2, 6, 6), gen, step=1.0, lo=-3.0, hi=9.0), 13,
        "ReLU6 with inputs exactly at 0 and 6, then MaxPool k2 s2", True)
    add("adaptive_max_ties", nn.Sequential(Act(), nn.AdaptiveMaxPool2d(1), nn.Flatten()),
        quantized((2, 4, 5, 5), gen, lo=-2.0, hi=0.5), 13,
        "ReLU then GlobalMaxPool: channels whose every value is 0 tie everywhere", True)
    add("avgpool_ceil_include", nn.AvgPool2d(3, 2, padding=1, ceil_mode=True,
                                             count_include_pad=True),
        torch.randn(2, 3, 10, 9, generator=gen).double(), 13,
        "AvgPool k3 s2 p1 ceil_mode count_include_pad=True (exported as Pad + AveragePool)")
    add("avgpool_ceil_exclude", nn.AvgPool2d(3, 2, padding=1, ceil_mode=True,
                                             count_include_pad=False),
        torch.randn(2, 3, 10, 9, generator=gen).double(), 13,
        "AvgPool k3 s2 p1 ceil_mode count_include_pad=False")
    add("hardswish_kinks", nn.Sequential(nn.Hardswish(), nn.Hardsigmoid()),
        quantized((2, 3, 4, 4), gen, step=1.5, lo=-4.5, hi=4.5), 14,
        "Hardswish then Hardsigmoid with inputs at exactly ±3 and 0")
    ln = nn.LayerNorm([5, 4])
    with torch.no_grad():
        ln.weight.copy_(torch.rand(5, 4, generator=gen) + 0.5)
        ln.bias.copy_(torch.rand(5, 4, generator=gen) - 0.5)
    add("layernorm_17", ln, torch.randn(2, 3, 5, 4, generator=gen).double(), 17,
        "LayerNorm over the last two axes, exported as LayerNormalization (opset 17)")
    add("layernorm_13", ln, torch.randn(2, 3, 5, 4, generator=gen).double(), 13,
        "The same LayerNorm exported at opset 13 (ReduceMean, Sub, Pow, Sqrt, Div, …)")
    add("gelu_silu_softmax", nn.Sequential(nn.GELU(), nn.SiLU(), nn.Softmax(dim=1)),
        torch.randn(2, 6, 3, 3, generator=gen).double(), 13, "GELU (Erf pattern), SiLU, Softmax")
    add("gelu_silu_softmax_11", nn.Sequential(nn.GELU(), nn.SiLU(), nn.LogSoftmax(dim=1)),
        torch.randn(2, 6, 3, 3, generator=gen).double(), 11,
        "GELU, SiLU, LogSoftmax(dim=1) at opset 11 (old softmax semantics, Unsqueeze attrs)")
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {"description": __doc__.strip().splitlines()[0], "cases": []}
    gen = torch.Generator().manual_seed(99)
    for name, module, x, opset, note, relu in cases():
        module = module.eval()
        path = os.path.join(OUT, f"{name}.onnx")
        torch.onnx.export(module.float(), (x.float(),), path, opset_version=opset,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        m64 = module.double()
        y = m64(x)
        seed = torch.randn(y.shape, generator=gen).double()
        entry = {"name": name, "opset": opset, "description": note, "x": list(x.shape),
                 "y": list(y.shape), "rules": ["standard"]}
        np.save(os.path.join(OUT, f"{name}.x.npy"), x.float().numpy())
        np.save(os.path.join(OUT, f"{name}.seed.npy"), seed.float().numpy())
        modes = [("standard", "grad")] + ([("guided", "guided"), ("deconvnet", "deconv")]
                                          if relu else [])
        for mode, suffix in modes:
            Act.mode = mode
            xx = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(m64(xx), xx, seed)
            np.save(os.path.join(OUT, f"{name}.{suffix}.npy"), g.float().numpy())
            if mode != "standard":
                entry["rules"].append(mode)
        Act.mode = "standard"
        manifest["cases"].append(entry)
        print(name, "ok")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
