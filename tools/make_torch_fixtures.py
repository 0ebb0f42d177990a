#!/usr/bin/python3
"""Generate the PyTorch reference fixtures under tests/fixtures/torch/.

Run from anywhere with Debian's Python (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 tools/make_torch_fixtures.py

Offline and deterministic: random weights come from fixed torch.Generator seeds, images
from scikit-image's bundled photos, and the pretrained MobileNetV2 from ../shared/models/imagenet/.

Part A (imagenet_mobilenet_v2/): the shared pretrained MobileNetV2 loaded into
torchvision.models.mobilenet_v2, with CAM, Grad-CAM, saliency, guided backprop,
deconvnet and occlusion references for chelsea.png and coffee.png.

Part B (<model>/): small random-weight torchvision architectures exported to ONNX with
logits, input/layer gradients, guided backprop, deconvnet and seeded gradients.

Every reference is computed with the model converted to float64 (float32 weights are
upcast exactly) and saved as float32. Every exported ONNX is re-run by a small NumPy
evaluator (float64) in this file and, if importable, by onnxruntime, and checked with
onnx.checker. manifest.json describes every file.
"""

import argparse
import copy
import hashlib
import importlib
import io
import json
import math
import os
import sys
import zlib
from collections import Counter
from functools import partial

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from numpy.lib.stride_tricks import sliding_window_view
from onnx import numpy_helper
from PIL import Image
from scipy.special import erf
from torchvision import transforms
from torchvision.models import convnext as tv_convnext
from torchvision.models import densenet as tv_densenet
from torchvision.models import efficientnet as tv_efficientnet
from torchvision.models import regnet as tv_regnet
from torchvision.models import resnet as tv_resnet
from torchvision.models import shufflenetv2 as tv_shufflenet
from torchvision.models import squeezenet as tv_squeezenet
from torchvision.models import vgg as tv_vgg

# torchvision.models.googlenet is shadowed by the googlenet() builder in the package namespace.
tv_googlenet = importlib.import_module("torchvision.models.googlenet")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_REL = "tests/fixtures/torch"
SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
SIZE_LIMIT_BYTES = 25 * 1024 * 1024

GUIDED_RULE = (
    "Guided backprop: the backward of every ReLU-like op is replaced, nothing else. "
    "ReLU: grad_in = (x > 0) * max(grad_out, 0). "
    "ReLU6 (ONNX Clip(0, 6)): grad_in = (x > 0) * (x < 6) * max(grad_out, 0), "
    "i.e. the true ReLU6 derivative times the positive part of the incoming gradient. "
    "x is the op's forward input."
)
DECONV_RULE = (
    "Deconvnet: the backward of every ReLU-like op is replaced by grad_in = max(grad_out, 0), "
    "for ReLU and ReLU6 alike; the forward input is ignored (no mask at 0 or at 6)."
)
RELU_LIKE_RULE = (
    "ReLU-like = torch nn.ReLU, nn.ReLU6 and F.relu calls = ONNX Relu and Clip(min=0, max=6) "
    "nodes. Not ReLU-like (their true gradient is kept): Hardswish, Hardsigmoid, SiLU, Sigmoid, "
    "GELU, and every other op (MaxPool, Conv, BatchNormalization, LayerNormalization, ...)."
)
MAXPOOL_RULE = (
    "MaxPool backward routes the gradient to the first maximum of each window in row-major "
    "window order (torch CPU). This only matters for deconvnet, where a window of equal values "
    "(all zeros after a ReLU) is not masked afterwards; padding is -inf."
)


# --------------------------------------------------------------------------------------------
# Small NumPy ONNX evaluator (float64). onnx 1.12 has no onnx.reference and onnxruntime is not
# installed for Debian's Python, so this re-runs the exported graphs and finds the ONNX names
# of the tapped torch activations.
# --------------------------------------------------------------------------------------------


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x, w, b, a):
    kh, kw = w.shape[2:]
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise ValueError("Cannot evaluate Conv: dilation is not supported by the NumPy evaluator")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError("Cannot evaluate Conv: auto_pad is not supported by the NumPy evaluator")
    p = a.get("pads", [0, 0, 0, 0])
    s = a.get("strides", [1, 1])
    g = a.get("group", 1)
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
    n, c = x.shape[:2]
    co, cig = w.shape[:2]
    oh = (x.shape[2] - kh) // s[0] + 1
    ow = (x.shape[3] - kw) // s[1] + 1
    if cig == 1 and g == c == co:
        out = np.zeros((n, co, oh, ow))
        for i in range(kh):
            for j in range(kw):
                sl = x[:, :, i:i + s[0] * (oh - 1) + 1:s[0], j:j + s[1] * (ow - 1) + 1:s[1]]
                out += sl * w[None, :, 0, i, j, None, None]
    else:
        win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::s[0], ::s[1]]
        win = win.reshape(n, g, cig, oh, ow, kh, kw)
        wg = w.reshape(g, co // g, cig, kh, kw)
        out = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True).reshape(n, co, oh, ow)
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def _pool(x, a, kind):
    k = a["kernel_shape"]
    s = a.get("strides", [1] * len(k))
    p = a.get("pads", [0] * (2 * len(k)))
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise ValueError("Cannot evaluate pooling: dilation is not supported")
    ceil = a.get("ceil_mode", 0)
    h, w = x.shape[2:]
    sizes = []
    for d, size in enumerate((h, w)):
        span = size + p[d] + p[d + 2] - k[d]
        o = (-(-span // s[d]) if ceil else span // s[d]) + 1
        # A window that would start inside the end padding is dropped (torch and ORT agree).
        if ceil and (o - 1) * s[d] >= size + p[d]:
            o -= 1
        sizes.append(o)
    extra = [max(0, (sizes[d] - 1) * s[d] + k[d] - (x.shape[2 + d] + p[d] + p[d + 2]))
             for d in range(2)]
    fill = -np.inf if kind == "max" else 0.0
    pads = ((0, 0), (0, 0), (p[0], p[2] + extra[0]), (p[1], p[3] + extra[1]))
    xp = np.pad(x, pads, constant_values=fill)
    win = sliding_window_view(xp, tuple(k), axis=(2, 3))[:, :, ::s[0], ::s[1]]
    win = win[:, :, :sizes[0], :sizes[1]]
    if kind == "max":
        return win.max(axis=(4, 5))
    total = win.sum(axis=(4, 5))
    if a.get("count_include_pad", 0):
        ones = np.pad(np.ones((1, 1, h, w)), ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])),
                      constant_values=1.0)
        ones = np.pad(ones, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    else:
        ones = np.pad(np.ones((1, 1, h, w)), pads)
    cwin = sliding_window_view(ones, tuple(k), axis=(2, 3))[:, :, ::s[0], ::s[1]]
    count = cwin[:, :, :sizes[0], :sizes[1]].sum(axis=(4, 5))
    return total / count


def _axes_arg(node, a, inputs, index):
    if "axes" in a:
        return list(a["axes"])
    if len(inputs) > index and inputs[index] is not None:
        return [int(v) for v in inputs[index]]
    return None


def _run_node(node, inputs, opset):
    op = node.op_type
    a = _attrs(node)
    x = inputs[0] if inputs else None
    if op == "Conv":
        return [_conv(x, inputs[1], inputs[2] if len(inputs) > 2 else None, a)]
    if op == "Relu":
        return [np.maximum(x, 0)]
    if op == "Clip":
        lo = inputs[1] if len(inputs) > 1 and inputs[1] is not None else a.get("min", -np.inf)
        hi = inputs[2] if len(inputs) > 2 and inputs[2] is not None else a.get("max", np.inf)
        return [np.clip(x, lo, hi)]
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
              "Pow": np.power}
    if op in binary:
        out = binary[op](x, inputs[1])
        if op == "Div" and x.dtype.kind == "i":
            out = x // inputs[1]
        return [out.astype(x.dtype) if x.dtype.kind == "i" else out]
    if op == "Sqrt":
        return [np.sqrt(x)]
    if op == "Erf":
        return [erf(x)]
    if op == "Sigmoid":
        return [1.0 / (1.0 + np.exp(-x))]
    if op == "HardSigmoid":
        return [np.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1)]
    if op == "HardSwish":
        return [x * np.clip(x / 6.0 + 0.5, 0, 1)]
    if op == "MaxPool":
        return [_pool(x, a, "max")]
    if op == "AveragePool":
        return [_pool(x, a, "avg")]
    if op == "GlobalAveragePool":
        return [x.mean(axis=(2, 3), keepdims=True)]
    if op == "ReduceMean":
        axes = _axes_arg(node, a, inputs, 1)
        return [x.mean(axis=tuple(axes), keepdims=bool(a.get("keepdims", 1)))]
    if op == "Flatten":
        ax = a.get("axis", 1)
        return [x.reshape(int(np.prod(x.shape[:ax])), -1)]
    if op == "Gemm":
        aa = x.T if a.get("transA", 0) else x
        bb = inputs[1].T if a.get("transB", 0) else inputs[1]
        out = a.get("alpha", 1.0) * (aa @ bb)
        if len(inputs) > 2:
            out = out + a.get("beta", 1.0) * inputs[2]
        return [out]
    if op == "MatMul":
        return [np.matmul(x, inputs[1])]
    if op == "Concat":
        return [np.concatenate(inputs, axis=a["axis"])]
    if op == "Reshape":
        shape = [int(v) for v in inputs[1]]
        shape = [x.shape[i] if v == 0 and not a.get("allowzero", 0) else v
                 for i, v in enumerate(shape)]
        return [x.reshape(shape)]
    if op == "Transpose":
        return [np.transpose(x, a.get("perm"))]
    if op == "Shape":
        return [np.array(x.shape, dtype=np.int64)]
    if op == "Gather":
        return [np.take(x, inputs[1], axis=a.get("axis", 0))]
    if op == "Unsqueeze":
        out = x
        for ax in sorted(_axes_arg(node, a, inputs, 1)):
            out = np.expand_dims(out, ax if ax >= 0 else ax + out.ndim + 1)
        return [out]
    if op == "Squeeze":
        axes = _axes_arg(node, a, inputs, 1)
        return [np.squeeze(x, axis=tuple(axes)) if axes is not None else np.squeeze(x)]
    if op == "Slice":
        starts, ends = inputs[1], inputs[2]
        axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
        steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
        sl = [slice(None)] * x.ndim
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            sl[int(ax)] = slice(int(st), int(min(en, sys.maxsize)), int(sp))
        return [x[tuple(sl)]]
    if op == "Split":
        ax = a.get("axis", 0)
        split = a.get("split") or (list(inputs[1]) if len(inputs) > 1 else None)
        if split is None:
            split = [x.shape[ax] // len(node.output)] * len(node.output)
        return np.split(x, np.cumsum(split)[:-1], axis=ax)
    if op == "Constant":
        return [numpy_helper.to_array(a["value"]).astype(np.float64)
                if a["value"].data_type == onnx.TensorProto.FLOAT
                else numpy_helper.to_array(a["value"])]
    if op == "ConstantOfShape":
        val = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1)
        return [np.full([int(v) for v in x], val[0])]
    if op == "Pad":
        if a.get("mode", b"constant") not in (b"constant", "constant"):
            raise ValueError(f"Cannot evaluate node {node.name!r}: Pad mode {a['mode']}")
        pads = [int(v) for v in (inputs[1] if len(inputs) > 1 else a["pads"])]
        value = float(inputs[2]) if len(inputs) > 2 and inputs[2] is not None else 0.0
        r = x.ndim
        return [np.pad(x, [(pads[i], pads[i + r]) for i in range(r)], constant_values=value)]
    if op in ("Identity", "Dropout"):
        return [x]
    if op == "Cast":
        to = a["to"]
        dtype = np.float64 if to in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE) else (
            onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[to])
        return [x.astype(dtype)]
    if op == "BatchNormalization":
        sc, bi, mean, var = inputs[1:5]
        eps = a.get("epsilon", 1e-5)
        r = (1, -1, 1, 1)
        return [(x - mean.reshape(r)) / np.sqrt(var.reshape(r) + eps) * sc.reshape(r)
                + bi.reshape(r)]
    if op == "LayerNormalization":
        ax = a.get("axis", -1)
        ax = ax if ax >= 0 else ax + x.ndim
        axes = tuple(range(ax, x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
        out = (x - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * inputs[1]
        return [out + inputs[2] if len(inputs) > 2 else out]
    raise ValueError(f"Cannot evaluate node {node.name!r}: op type {op} (opset {opset}) "
                     "is not supported by the NumPy evaluator")


def evaluate_onnx(model, feeds):
    """Run an ONNX model in float64; return every value by name (inputs, nodes, outputs)."""
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    values = {}
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        values[init.name] = arr.astype(np.float64) if arr.dtype.kind == "f" else arr
    for name, arr in feeds.items():
        values[name] = np.asarray(arr, dtype=np.float64)
    for node in model.graph.node:
        ins = [values[i] if i else None for i in node.input]
        outs = _run_node(node, ins, opset)
        for name, val in zip(node.output, outs):
            if name:
                values[name] = val
    return values


def directional_check(model, x, grad, weights, seed):
    """Error of <grad, v> against a central difference of sum(weights * logits) along a random
    direction v on the exported ONNX graph in float64, relative to sum |grad * v|."""
    v = np.random.default_rng(seed).standard_normal(x.shape)
    h = 1e-7  # small: every ReLU/Clip kink crossed by x +- h*v adds error

    def f(t):
        return float(np.sum(weights * evaluate_onnx(model, {"input": t})["logits"]))

    fd = (f(x + h * v) - f(x - h * v)) / (2 * h)
    terms = np.asarray(grad, np.float64) * v
    exact = float(np.sum(terms))
    # Scaled by sum |g_i v_i| rather than |<g, v>|, which can cancel to near zero.
    return abs(fd - exact) / max(float(np.sum(np.abs(terms))), 1e-12)


def onnxruntime_logits(path, x):
    """Logits from onnxruntime when it is importable, else None."""
    try:
        import onnxruntime  # noqa: PLC0415
    except ImportError:
        return None
    sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x.astype(np.float32)})[0]


# --------------------------------------------------------------------------------------------
# Guided backprop / deconvnet: ReLU-like backward overrides.
# --------------------------------------------------------------------------------------------


class _ModifiedReluFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, upper, mode):
        ctx.save_for_backward(x)
        ctx.upper = upper
        ctx.mode = mode
        return x.clamp(min=0.0) if upper is None else x.clamp(min=0.0, max=upper)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        positive = grad_out.clamp(min=0.0)
        if ctx.mode == "deconvnet":
            return positive, None, None
        mask = x > 0
        if ctx.upper is not None:
            mask = mask & (x < ctx.upper)
        return positive * mask.to(positive.dtype), None, None


class ModifiedRelu(nn.Module):
    """Stand-in for nn.ReLU / nn.ReLU6 whose backward follows GUIDED_RULE or DECONV_RULE."""

    def __init__(self, upper, mode, counter):
        super().__init__()
        self.upper = upper
        self.mode = mode
        self.counter = counter

    def forward(self, x):
        self.counter["calls"] += 1
        return _ModifiedReluFn.apply(x, self.upper, self.mode)


class relu_override:  # noqa: N801 - used as a context manager
    """Replace every nn.ReLU/nn.ReLU6 in `model` and every functional F.relu call."""

    def __init__(self, model, mode):
        self.model = model
        self.mode = mode
        self.counter = {"calls": 0}
        self.saved = None

    def __enter__(self):
        for parent in list(self.model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.ReLU:
                    setattr(parent, name, ModifiedRelu(None, self.mode, self.counter))
                elif type(child) is nn.ReLU6:
                    setattr(parent, name, ModifiedRelu(6.0, self.mode, self.counter))
                elif isinstance(child, (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.LeakyReLU)):
                    raise TypeError(f"Cannot override {type(child).__name__}: unexpected subclass")
        self.saved = F.relu
        counter, mode = self.counter, self.mode

        def relu(x, inplace=False):
            counter["calls"] += 1
            return _ModifiedReluFn.apply(x, None, mode)

        F.relu = relu
        return self

    def __exit__(self, *exc):
        F.relu = self.saved
        return False


class relu_recorder:  # noqa: N801 - used as a context manager
    """Record the outputs of every F.relu call (nn.ReLU calls F.relu too), in call order."""

    def __init__(self):
        self.outputs = []
        self.saved = None

    def __enter__(self):
        self.saved = F.relu
        saved, outputs = self.saved, self.outputs

        def relu(x, inplace=False):
            out = saved(x, inplace=False)
            outputs.append(out)
            return out

        F.relu = relu
        return self

    def __exit__(self, *exc):
        F.relu = self.saved
        return False


def check_relu_rules():
    """The override rules on hand-picked values (x below 0, inside, above 6; signs of grad)."""
    x = torch.tensor([-1.0, 0.5, 3.0, 7.0, 2.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([1.0, -1.0, 2.0, 2.0, 3.0], dtype=torch.float64)
    expected = {
        ("guided", None): [0.0, 0.0, 2.0, 2.0, 3.0],
        ("guided", 6.0): [0.0, 0.0, 2.0, 0.0, 3.0],
        ("deconvnet", None): [1.0, 0.0, 2.0, 2.0, 3.0],
        ("deconvnet", 6.0): [1.0, 0.0, 2.0, 2.0, 3.0],
    }
    for (mode, upper), want in expected.items():
        got = torch.autograd.grad(_ModifiedReluFn.apply(x, upper, mode), x, g)[0]
        if got.tolist() != want:
            raise AssertionError(f"Cannot trust the {mode} rule (upper={upper}): {got.tolist()}")


def no_inplace(model):
    """Turn off inplace activations so tapped tensors keep their values."""
    for m in model.modules():
        if hasattr(m, "inplace") and isinstance(m.inplace, bool):
            m.inplace = False
    return model


# --------------------------------------------------------------------------------------------
# File and manifest helpers.
# --------------------------------------------------------------------------------------------


class Writer:
    """Writes fixture files and keeps the manifest's file table."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.files = {}

    def npy(self, rel, arr, description):
        if isinstance(arr, torch.Tensor):
            arr = to_np(arr)
        arr = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
        path = os.path.join(self.out_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, arr)
        self._record(rel, {"kind": "npy", "dtype": "float32", "shape": list(arr.shape),
                           "description": description})
        return rel

    def raw(self, rel, data, description, **extra):
        path = os.path.join(self.out_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        self._record(rel, {"kind": rel.rsplit(".", 1)[-1], "description": description, **extra})
        return rel

    def _record(self, rel, info):
        with open(os.path.join(self.out_dir, rel), "rb") as f:
            data = f.read()
        info["bytes"] = len(data)
        info["sha256"] = hashlib.sha256(data).hexdigest()
        self.files[rel] = info


def to_np(t):
    return t.detach().cpu().numpy()


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def bound(v):
    """v rounded up to a power of ten, so the manifest does not change with the thread count."""
    return 0.0 if v <= 0 else float(f"1e{math.ceil(math.log10(v) - 1e-9)}")


def stable_check(check):
    """Diagnostics for the manifest: differences as power-of-ten bounds, the rest 3 decimals."""
    return {k: bound(v) if k.endswith(("_max_abs", "_rel")) else round(v, 3)
            for k, v in check.items()}


def op_counts(model):
    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


# --------------------------------------------------------------------------------------------
# Part A: the shared pretrained MobileNetV2.
# --------------------------------------------------------------------------------------------


def load_imagenet_mobilenet_v2(onnx_model):
    """torchvision mobilenet_v2 carrying the ONNX weights (BN folded => BN made identity+bias)."""
    model = torchvision.models.mobilenet_v2()
    inits = {i.name: numpy_helper.to_array(i) for i in onnx_model.graph.initializer}
    convs = [n for n in onnx_model.graph.node if n.op_type == "Conv"]
    modules = list(model.modules())
    torch_convs = [(m, modules[i + 1]) for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)]
    if len(convs) != len(torch_convs):
        raise ValueError(f"Cannot map weights: {len(convs)} ONNX convs vs {len(torch_convs)} torch")
    for node, (conv, bn) in zip(convs, torch_convs):
        w, b = inits[node.input[1]], inits[node.input[2]]
        groups = _attrs(node).get("group", 1)
        if tuple(w.shape) != tuple(conv.weight.shape) or groups != conv.groups:
            raise ValueError(f"Cannot map weights of {node.output[0]}: shape {w.shape} "
                             f"vs torch {tuple(conv.weight.shape)}")
        if not isinstance(bn, nn.BatchNorm2d):
            raise ValueError(f"Cannot map weights of {node.output[0]}: no BatchNorm after conv")
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.array(w)))
            # eps=0 and var=1 make the BN exactly x + bias, in float32 and float64.
            bn.eps = 0.0
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(np.array(b)))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
    fc = model.classifier[1]
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(inits["classifier.1.weight"]))
        fc.bias.copy_(torch.from_numpy(inits["classifier.1.bias"]))
    return model.eval()


def occlusion_captum(forward, x, target, window, stride, baseline):
    """Captum Occlusion.attribute for one image, window over all channels, written out plainly.

    Captum: shift counts = ceil((dim - window) / stride) + 1 per spatial dim; each window
    replaces x by `baseline` inside it; attribution accumulates (f(x) - f(x_occ))[target] * mask
    and is divided by the per-element count of windows covering it.
    """
    _, c, h, w = x.shape
    with torch.no_grad():
        base = forward(x)[0, target]
        counts = [math.ceil((d - window) / stride) + 1 for d in (h, w)]
        total = torch.zeros_like(x)
        weights = torch.zeros_like(x)
        batch, masks = [], []
        positions = [(i, j) for i in range(counts[0]) for j in range(counts[1])]
        for k, (i, j) in enumerate(positions):
            mask = torch.zeros_like(x)
            mask[:, :, i * stride:i * stride + window, j * stride:j * stride + window] = 1.0
            batch.append(x * (1 - mask) + baseline * mask)
            masks.append(mask)
            if len(batch) == 13 or k == len(positions) - 1:
                out = forward(torch.cat(batch))[:, target]
                for diff, m in zip(base - out, masks):
                    total += diff * m
                    weights += m
                batch, masks = [], []
    return total / weights, len(positions)


def part_a(writer, shared_dir):
    onnx_path = os.path.join(shared_dir, "mobilenet_v2_float32.onnx")
    with open(onnx_path, "rb") as f:
        onnx_bytes = f.read()
    onnx_model = onnx.load_from_string(onnx_bytes)
    labels_path = os.path.join(shared_dir, "imagenet_labels_1000.txt")
    with open(labels_path) as f:
        labels = [line.rstrip("\n") for line in f]

    images = ["chelsea.png", "coffee.png"]
    tf = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    x32 = torch.stack([tf(Image.open(os.path.join(SKIMAGE_DATA, n)).convert("RGB"))
                       for n in images])

    model32 = no_inplace(load_imagenet_mobilenet_v2(onnx_model))
    model = copy.deepcopy(model32).double()
    x = x32.double()

    # Check against the ONNX graph itself (NumPy evaluator, float64).
    values = evaluate_onnx(onnx_model, {"input": to_np(x32)})
    taps = {}
    h = model.features.register_forward_hook(lambda m, i, o: taps.__setitem__("697", o))
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    h.remove()
    feats = taps["697"]
    with torch.no_grad():
        logits32 = model32(x32)
    check = {
        "torch_float64_vs_onnx_numpy_float64_logits_max_abs": max_abs(to_np(logits),
                                                                      values["logits"]),
        "torch_float64_vs_onnx_numpy_float64_697_max_abs": max_abs(to_np(feats), values["697"]),
        "torch_float32_vs_float64_logits_max_abs": max_abs(to_np(logits32), to_np(logits)),
    }
    if check["torch_float64_vs_onnx_numpy_float64_logits_max_abs"] > 1e-5:
        raise AssertionError(f"Cannot trust the weight load: {check}")
    ort = onnxruntime_logits(onnx_path, to_np(x32))
    if ort is not None:
        check["onnxruntime_vs_torch_float64_logits_max_abs"] = max_abs(ort, to_np(logits))

    targets = logits.argmax(1)
    probs = torch.softmax(logits, 1)
    top5 = []
    for n in range(len(images)):
        p, idx = probs[n].topk(5)
        top5.append([{"index": int(i), "label": labels[int(i)], "prob": round(float(v), 6)}
                     for v, i in zip(p, idx)])
    picked = logits[torch.arange(len(images)), targets].sum()
    grad_x, grad_a = torch.autograd.grad(picked, [xg, feats])

    w = model.classifier[1].weight  # [1000, 1280]
    with torch.no_grad():
        cam = torch.einsum("nk,nkhw->nhw", w[targets], feats).unsqueeze(1)
        alphas = grad_a.mean(dim=(2, 3))
        gradcam = F.relu(torch.einsum("nk,nkhw->nhw", alphas, feats)).unsqueeze(1)

    # GAP + Gemm is linear, so the CAM's spatial mean plus the bias is the logit, and the
    # gradient at 697 is W[target] / (7*7) everywhere, making Grad-CAM = ReLU(CAM) / 49.
    b = model.classifier[1].bias
    hw = feats.shape[2] * feats.shape[3]
    check["cam_mean_plus_bias_vs_logit_max_abs"] = max_abs(
        to_np(cam.mean(dim=(1, 2, 3)) + b[targets]), to_np(logits[torch.arange(2), targets]))
    check["gradcam_vs_relu_cam_over_hw_max_abs"] = max_abs(to_np(gradcam),
                                                           to_np(F.relu(cam) / hw))
    if max(check["cam_mean_plus_bias_vs_logit_max_abs"],
           check["gradcam_vs_relu_cam_over_hw_max_abs"]) > 1e-9:
        raise AssertionError(f"Cannot reconcile CAM, Grad-CAM and logits: {check}")

    check["input_gradient_vs_onnx_finite_difference_rel"] = directional_check(
        onnx_model, to_np(x32).astype(np.float64), to_np(grad_x),
        np.eye(1000)[to_np(targets)], 3)
    if check["input_gradient_vs_onnx_finite_difference_rel"] > 1e-4:
        raise AssertionError(f"Cannot confirm the input gradient on the ONNX graph: {check}")

    special = {}
    for mode in ("guided", "deconvnet"):
        m = copy.deepcopy(model)
        with relu_override(m, mode) as ov:
            xi = x.clone().requires_grad_(True)
            out = m(xi)
            special[mode] = torch.autograd.grad(out[torch.arange(len(images)), targets].sum(),
                                                xi)[0]
            if max_abs(to_np(out), to_np(logits)) != 0.0:
                raise AssertionError("Cannot override ReLU6: forward values changed")
            special[mode + "_calls"] = ov.counter["calls"]

    occ, n_windows = occlusion_captum(model, x[:1], int(targets[0]), 32, 16, 0.0)

    # Integrated gradients of image 0 at 64 Gauss-Legendre points from a zero baseline, with
    # its completeness gap: this ReLU6 net's integrand is rough, so the gap is intrinsic.
    nodes, w = np.polynomial.legendre.leggauss(64)
    ig64 = integrated_gradients_ref(model, x[:1], targets[:1], 0.5 * (nodes + 1), 0.5 * w,
                                    torch.zeros_like(x[:1]))
    with torch.no_grad():
        f_delta = float(logits[0, targets[0]] - model(torch.zeros_like(x[:1]))[0, targets[0]])
    check["ig64_completeness_gap_relative"] = round(abs(float(ig64.sum()) - f_delta) / abs(f_delta), 4)

    # The same input gradient in float32: in this dequantized net many pre-activations sit at
    # ReLU6's bounds, so float32 rounding flips masks; this is the float32 noise floor.
    x32g = x32.clone().requires_grad_(True)
    out32 = model32(x32g)
    grad_x32 = torch.autograd.grad(out32[torch.arange(len(images)), targets].sum(), x32g)[0]
    check["input_gradient_float32_vs_float64_rel"] = max_abs(
        to_np(grad_x32), to_np(grad_x)) / float(grad_x.abs().max())

    d = "imagenet_mobilenet_v2"
    arrays = {
        "input": writer.npy(f"{d}/input.npy", x32, "chelsea, coffee preprocessed (torchvision)"),
        "logits": writer.npy(f"{d}/logits.npy", logits, "model logits [2,1000]"),
        "features_697": writer.npy(f"{d}/features_697.npy", feats,
                                   "ONNX tensor 697: last 1x1 conv after ReLU6 [2,1280,7,7]"),
        "cam": writer.npy(f"{d}/cam.npy", cam,
                          "CAM sum_k W[target,k] * A_k (no bias, no ReLU) [2,1,7,7]"),
        "cam_relu": writer.npy(f"{d}/cam_relu.npy", F.relu(cam), "ReLU(cam) [2,1,7,7]"),
        "input_gradient": writer.npy(f"{d}/input_gradient.npy", grad_x,
                                     "d logit[n,target_n] / d input [2,3,224,224]"),
        "ig_gausslegendre64": writer.npy(
            f"{d}/ig_gausslegendre64.npy", ig64,
            "integrated gradients of image 0, target 285, 64 Gauss-Legendre, zeros [1,3,224,224]"),
        "input_gradient_float32": writer.npy(
            f"{d}/input_gradient_float32.npy", grad_x32,
            "the same input gradient computed by torch in float32 (noise floor) [2,3,224,224]"),
        "layer_gradient_697": writer.npy(f"{d}/layer_gradient_697.npy", grad_a,
                                         "d logit[n,target_n] / d tensor 697 [2,1280,7,7]"),
        "gradcam": writer.npy(f"{d}/gradcam.npy", gradcam,
                              "ReLU(sum_k mean_hw(grad_k) * A_k) at 697 [2,1,7,7]"),
        "guided_backprop": writer.npy(f"{d}/guided_backprop.npy", special["guided"],
                                      "guided backprop input gradient [2,3,224,224]"),
        "deconvnet": writer.npy(f"{d}/deconvnet.npy", special["deconvnet"],
                                "deconvnet input gradient [2,3,224,224]"),
        "occlusion": writer.npy(f"{d}/occlusion_w32_s16_b0.npy", occ,
                                "Captum Occlusion, image 0, window 32, stride 16, baseline 0 "
                                "[1,3,224,224]"),
    }
    return {
        "model": "../shared/models/imagenet/mobilenet_v2_float32.onnx",
        "model_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "torch_model": "torchvision.models.mobilenet_v2() with the ONNX Conv weights; each "
                       "BatchNorm2d set to weight=1, bias=ONNX conv bias, running_mean=0, "
                       "running_var=1, eps=0 (exactly x + bias); classifier.1 = Gemm weights",
        "images": [f"skimage/data/{n}" for n in images],
        "preprocess": "PIL .convert('RGB'), transforms.Resize(256) (PIL bilinear), "
                      "CenterCrop(224), ToTensor(), Normalize(mean=[0.485,0.456,0.406], "
                      "std=[0.229,0.224,0.225])",
        "targets": [int(t) for t in targets],
        "target_labels": [labels[int(t)] for t in targets],
        "top5": top5,
        "layer": {"onnx_name": "697", "torch_module": "features", "shape": list(feats.shape)},
        "cam_weights": "classifier.1.weight rows of the target (ONNX Gemm B, transB=1)",
        "occlusion": {"image_index": 0, "target": int(targets[0]), "window": 32, "stride": 16,
                      "baseline": 0.0, "channels": "all 3 (window 3x32x32, channel stride 3)",
                      "windows": n_windows, "space": "on the preprocessed (normalized) input",
                      "semantics": "captum.attr.Occlusion.attribute: per element, sum over "
                                   "windows covering it of (f(x) - f(x_occluded))[target] "
                                   "divided by the number of such windows"},
        "relu_like_calls_overridden": special["guided_calls"],
        "arrays": arrays,
        "check": stable_check(check),
    }


# --------------------------------------------------------------------------------------------
# Part B: random-weight torchvision architectures.
# --------------------------------------------------------------------------------------------


def build_resnet_basic():
    m = tv_resnet.ResNet(tv_resnet.BasicBlock, [1, 1, 1, 1], num_classes=10)
    return _narrow_resnet(m, tv_resnet.BasicBlock, [16, 32, 48, 64])


def build_resnext_bottleneck():
    m = tv_resnet.ResNet(tv_resnet.Bottleneck, [1, 1, 1, 1], num_classes=10, groups=4,
                         width_per_group=16)
    return _narrow_resnet(m, tv_resnet.Bottleneck, [8, 16, 32, 64])


def _narrow_resnet(m, block, planes):
    # ResNet's widths are fixed (64..512); rebuild stem, stages and fc narrower with ResNet's
    # own _make_layer so the blocks and forward are torchvision's.
    m.inplanes = 16
    m.conv1 = nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(16)
    m.layer1 = m._make_layer(block, planes[0], 1)
    m.layer2 = m._make_layer(block, planes[1], 1, stride=2)
    m.layer3 = m._make_layer(block, planes[2], 1, stride=2)
    m.layer4 = m._make_layer(block, planes[3], 1, stride=2)
    m.fc = nn.Linear(planes[3] * block.expansion, 10)
    return m


def build_vgg_bn():
    cfg = [8, "M", 16, "M", 32, 32, "M", 64, 64, "M"]
    m = tv_vgg.VGG(tv_vgg.make_layers(cfg, batch_norm=True), num_classes=10, init_weights=False)
    # VGG's classifier is hard-wired to 512*7*7 -> 4096 -> 4096; same layout, narrower.
    m.classifier = nn.Sequential(
        nn.Linear(64 * 7 * 7, 32), nn.ReLU(True), nn.Dropout(),
        nn.Linear(32, 32), nn.ReLU(True), nn.Dropout(),
        nn.Linear(32, 10),
    )
    return m


def build_squeezenet():
    m = tv_squeezenet.SqueezeNet("1_1", num_classes=10)
    fire = tv_squeezenet.Fire
    # squeezenet1_1's layout with every width halved (Fire widths are hard-wired).
    m.features = nn.Sequential(
        nn.Conv2d(3, 32, kernel_size=3, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        fire(32, 8, 32, 32), fire(64, 8, 32, 32),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        fire(64, 16, 64, 64), fire(128, 16, 64, 64),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        fire(128, 24, 96, 96), fire(192, 24, 96, 96), fire(192, 32, 128, 128),
        fire(256, 32, 128, 128),
    )
    m.classifier[1] = nn.Conv2d(256, 10, kernel_size=1)
    return m


def build_mobilenet_v2():
    return torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10)


def build_mobilenet_v3_small():
    return torchvision.models.mobilenet_v3_small(width_mult=0.35, num_classes=10)


def build_mobilenet_v3_large():
    return torchvision.models.mobilenet_v3_large(width_mult=0.25, reduced_tail=True,
                                                 num_classes=10)


def build_densenet():
    return tv_densenet.DenseNet(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16,
                                bn_size=4, num_classes=10)


def build_efficientnet():
    setting, last = tv_efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.25,
                                                       depth_mult=0.5)
    return tv_efficientnet.EfficientNet(setting, dropout=0.2, num_classes=10, last_channel=last)


def build_googlenet():
    m = tv_googlenet.GoogLeNet(num_classes=10, aux_logits=False, transform_input=False,
                               init_weights=False)
    conv, inc = tv_googlenet.BasicConv2d, tv_googlenet.Inception
    # GoogLeNet's widths are hard-wired; every width divided by 8, same modules and forward.
    m.conv1 = conv(3, 8, kernel_size=7, stride=2, padding=3)
    m.conv2 = conv(8, 8, kernel_size=1)
    m.conv3 = conv(8, 24, kernel_size=3, padding=1)
    m.inception3a = inc(24, 8, 12, 16, 2, 4, 4)
    m.inception3b = inc(32, 16, 16, 24, 4, 12, 8)
    m.inception4a = inc(60, 24, 12, 26, 2, 6, 8)
    m.inception4b = inc(64, 20, 14, 28, 3, 8, 8)
    m.inception4c = inc(64, 16, 16, 32, 3, 8, 8)
    m.inception4d = inc(64, 14, 18, 36, 4, 8, 8)
    m.inception4e = inc(66, 32, 20, 40, 4, 16, 16)
    m.inception5a = inc(104, 32, 20, 40, 4, 16, 16)
    m.inception5b = inc(104, 48, 24, 48, 6, 16, 16)
    m.fc = nn.Linear(128, 10)
    return m


def build_shufflenet():
    return tv_shufflenet.ShuffleNetV2([2, 2, 2], [24, 24, 48, 96, 256], num_classes=10)


def build_regnet():
    params = tv_regnet.BlockParams.from_init_params(depth=5, w_0=16, w_a=8.0, w_m=2.0,
                                                    group_width=8, se_ratio=0.25)
    return tv_regnet.RegNet(params, num_classes=10, stem_width=16)


def build_convnext():
    cfg = tv_convnext.CNBlockConfig
    setting = [cfg(16, 32, 1), cfg(32, 64, 1), cfg(64, 96, 1), cfg(96, None, 1)]
    return tv_convnext.ConvNeXt(setting, stochastic_depth_prob=0.0, num_classes=10)


# Taps: ("module", dotted path) = that module's output; ("relu_call", k) = output of the k-th
# F.relu call of the forward (DenseNet applies its last ReLU functionally).
MODELS = [
    {"name": "resnet_basic", "family": "ResNet", "build": build_resnet_basic, "opset": 11,
     "input": [2, 3, 64, 64],
     "builder": "resnet.ResNet(BasicBlock, [1,1,1,1], num_classes=10), stem 16 ch, stages "
                "rebuilt with ResNet._make_layer at widths 16/32/48/64, fc 64->10",
     "mid": ("module", "layer2"), "last": ("module", "layer4")},
    {"name": "resnext_bottleneck", "family": "ResNet", "build": build_resnext_bottleneck,
     "opset": 17, "input": [1, 3, 64, 64],
     "builder": "resnet.ResNet(Bottleneck, [1,1,1,1], groups=4, width_per_group=16), stem 16, "
                "stages rebuilt with _make_layer at planes 8/16/32/64 (out x4), fc 256->10",
     "mid": ("module", "layer2"), "last": ("module", "layer4")},
    {"name": "vgg_bn", "family": "VGG", "build": build_vgg_bn, "opset": 12,
     "input": [1, 3, 112, 112],
     "builder": "vgg.VGG(make_layers([8,M,16,M,32,32,M,64,64,M], batch_norm=True)); classifier "
                "replaced by the same Linear-ReLU-Dropout x2-Linear layout at 3136->32->32->10; "
                "112 input so the 4 pools give 7x7 and AdaptiveAvgPool2d((7,7)) exports as "
                "AveragePool(k=1) exactly like full VGG at 224",
     "mid": ("module", "features.13"), "last": ("module", "features")},
    {"name": "squeezenet", "family": "SqueezeNet", "build": build_squeezenet, "opset": 12,
     "input": [1, 3, 66, 66],
     "builder": "squeezenet.SqueezeNet('1_1', num_classes=10) with features rebuilt from Fire "
                "at half width (conv 32, Fire squeeze/expand halved); 66 input so every ceil-mode "
                "MaxPool gets a partial last window",
     "mid": ("module", "features.4"), "last": ("module", "features")},
    {"name": "mobilenet_v2", "family": "MobileNetV2", "build": build_mobilenet_v2, "opset": 13,
     "input": [2, 3, 64, 64],
     "builder": "torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10)",
     "mid": ("module", "features.7"), "last": ("module", "features")},
    {"name": "mobilenet_v3_small", "family": "MobileNetV3", "build": build_mobilenet_v3_small,
     "opset": 14, "input": [1, 3, 64, 64],
     "builder": "torchvision.models.mobilenet_v3_small(width_mult=0.35, num_classes=10); "
                "opset 14 exports HardSwish natively",
     "mid": ("module", "features.4"), "last": ("module", "features")},
    {"name": "mobilenet_v3_large", "family": "MobileNetV3", "build": build_mobilenet_v3_large,
     "opset": 12, "input": [1, 3, 64, 64],
     "builder": "torchvision.models.mobilenet_v3_large(width_mult=0.25, reduced_tail=True, "
                "num_classes=10); opset 12 exports Hardswish as HardSigmoid + Mul",
     "mid": ("module", "features.7"), "last": ("module", "features")},
    {"name": "densenet", "family": "DenseNet", "build": build_densenet, "opset": 15,
     "input": [1, 3, 64, 64],
     "builder": "densenet.DenseNet(growth_rate=8, block_config=(2,2,2,2), "
                "num_init_features=16, bn_size=4, num_classes=10)",
     "mid": ("module", "features.transition2"), "last": ("relu_call", -1)},
    {"name": "efficientnet", "family": "EfficientNet", "build": build_efficientnet,
     "opset": 16, "input": [1, 3, 64, 64],
     "builder": "efficientnet.EfficientNet(*_efficientnet_conf('efficientnet_b0', "
                "width_mult=0.25, depth_mult=0.5), dropout=0.2, num_classes=10)",
     "mid": ("module", "features.4"), "last": ("module", "features")},
    {"name": "googlenet", "family": "GoogLeNet", "build": build_googlenet, "opset": 13,
     "input": [1, 3, 64, 64],
     "builder": "googlenet.GoogLeNet(num_classes=10, aux_logits=False, transform_input=False) "
                "with conv1-3, inception3a-5b and fc rebuilt from BasicConv2d/Inception at "
                "1/8 of every width",
     "mid": ("module", "inception4a"), "last": ("module", "inception5b")},
    {"name": "shufflenet_v2", "family": "ShuffleNetV2", "build": build_shufflenet, "opset": 11,
     "input": [1, 3, 64, 64],
     "builder": "shufflenetv2.ShuffleNetV2([2,2,2], [24,24,48,96,256], num_classes=10) "
                "(x0.5 widths except conv5 256, fewer repeats)",
     "mid": ("module", "stage3"), "last": ("module", "conv5")},
    {"name": "regnet", "family": "RegNet", "build": build_regnet, "opset": 16,
     "input": [1, 3, 64, 64],
     "builder": "regnet.RegNet(BlockParams.from_init_params(depth=5, w_0=16, w_a=8.0, w_m=2.0, "
                "group_width=8, se_ratio=0.25), num_classes=10, stem_width=16) (RegNetY-style, "
                "with SE)",
     "mid": ("module", "trunk_output.block2"), "last": ("module", "trunk_output")},
    {"name": "convnext", "family": "ConvNeXt", "build": build_convnext, "opset": 17,
     "input": [2, 3, 64, 64],
     "builder": "convnext.ConvNeXt([CNBlockConfig(16,32,1), (32,64,1), (64,96,1), (96,None,1)], "
                "num_classes=10); opset 17 exports LayerNormalization natively",
     "mid": ("module", "features.3"), "last": ("module", "features")},
    {"name": "convnext_opset13", "family": "ConvNeXt", "build": build_convnext, "opset": 13,
     "input": [1, 3, 64, 64],
     "builder": "same architecture as convnext (different weights); opset 13 decomposes "
                "layer norm into ReduceMean/Sub/Pow/Sqrt/Div",
     "mid": ("module", "features.3"), "last": ("module", "features")},
]


def seed_of(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def randomize(model, gen, input_shape):
    """Random weights, then BN running stats calibrated on random data and perturbed."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=gen)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1, generator=gen)
            elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.2, generator=gen)
            elif isinstance(m, tv_convnext.CNBlock):
                m.layer_scale.uniform_(0.2, 1.0, generator=gen)
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        model.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        # float64 so the thread count cannot move a statistic across a 1/256 step below.
        model.double()
        model(torch.randn([8] + input_shape[1:], generator=gen).double())
        model.eval()
        for bn in bns:
            bn.momentum = 0.1
            # Perturb so BN is not a pure normalizer, and quantize to 1/256 so tiny reduction
            # order differences between machines cannot change the stored weights.
            var = bn.running_var * torch.empty_like(bn.running_var).uniform_(0.6, 1.6,
                                                                             generator=gen)
            mean = bn.running_mean + 0.3 * var.sqrt() * torch.randn(bn.running_mean.shape,
                                                                      generator=gen)
            bn.running_var.copy_(torch.clamp(torch.round(var * 256) / 256, min=1 / 256))
            bn.running_mean.copy_(torch.round(mean * 256) / 256)
    return model.float()


def export_onnx(model, x, opset):
    f = io.BytesIO()
    torch.onnx.export(model, x, f, opset_version=opset, input_names=["input"],
                      output_names=["logits"], do_constant_folding=True,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return f.getvalue()


def forward_with_taps(model, x, spec):
    """Forward pass returning logits and the tensors at the `mid` and `last` taps."""
    taps, hooks = {}, []
    for key in ("mid", "last"):
        kind, where = spec[key]
        if kind == "module":
            hooks.append(model.get_submodule(where).register_forward_hook(
                lambda m, i, o, key=key: taps.__setitem__(key, o)))
    with relu_recorder() as rec:
        logits = model(x)
    for hook in hooks:
        hook.remove()
    for key in ("mid", "last"):
        kind, where = spec[key]
        if kind == "relu_call":
            taps[key] = rec.outputs[where]
    return logits, taps["mid"], taps["last"]


def find_onnx_name(model, values, ref, label):
    """ONNX node outputs equal to `ref` (same shape, values within 1e-4 relative)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    scale = 1.0 + float(np.max(np.abs(ref)))
    found = []
    for name, val in values.items():
        node = producers.get(name)
        if node is None or val.shape != ref.shape or val.dtype.kind != "f":
            continue
        diff = max_abs(val, ref)
        if diff <= 1e-4 * scale:
            found.append((name, node.op_type, diff))
    real = [f for f in found if f[1] != "Identity"]
    if not real:
        raise AssertionError(f"Cannot find the ONNX tensor for {label}: no value matches")
    # Several names can hold the same values (e.g. VGG's MaxPool then AveragePool(k=1)); the
    # first in graph order is the module's own output.
    return real[0], [f[0] for f in real[1:]]


# --- Path methods (integrated gradients, SmoothGrad) -------------------------------------------
# Not resnet_basic: at one of its 16 IG points a ReLU input sits within float32 noise of 0, and
# torch float32 itself gives image 1 a 0.5%-different IG depending on the batch it runs in.
PATH_METHOD_MODELS = {"mobilenet_v3_small", "efficientnet"}
M32 = 0xFFFFFFFF


def _rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


class LanternRandom:
    """Bit-exact port of kernels/random.ts (splitmix32 seeding, xoshiro128**, Box-Muller)."""

    def __init__(self, seed):
        x = seed & M32
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B9) & M32
            z = x
            z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
            z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
            self.s.append((z ^ (z >> 16)) & M32)
        self.spare = None

    def next_uint32(self):
        s = self.s
        result = (_rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 11)
        return result

    def uniform(self):
        return self.next_uint32() / 4294967296.0

    def normal(self):
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        u = 0.0
        while u == 0.0:
            u = self.uniform()
        v = self.uniform()
        r = math.sqrt(-2.0 * math.log(u))
        self.spare = r * math.sin(2.0 * math.pi * v)
        return r * math.cos(2.0 * math.pi * v)


def _target_grad(model, points, targets):
    p = points.clone().requires_grad_(True)
    out = model(p)
    return torch.autograd.grad(out[torch.arange(p.shape[0]), targets].sum(), p)[0]


def integrated_gradients_ref(model, x, targets, alphas, weights, baseline):
    """Captum's IntegratedGradients: (x - x') * sum_k w_k grad F(x' + a_k (x - x')).

    Path points are formed in float64 and rounded to the model's dtype, as Lantern forms them.
    """
    dtype = next(model.parameters()).dtype
    x, baseline = x.double(), baseline.double()
    total = torch.zeros_like(x)
    for a, w in zip(alphas, weights):
        points = (baseline + float(a) * (x - baseline)).float().to(dtype)
        total += float(w) * _target_grad(model, points, targets).double()
    return (x - baseline) * total


def smoothgrad_ref(model, x32, targets, samples, sigma_frac, seed):
    """NoiseTunnel over the plain gradient with Lantern's noise stream (same seed, same order)."""
    dtype = next(model.parameters()).dtype
    rng = LanternRandom(seed)
    n = x32.shape[0]
    per = x32[0].numel()
    grads = []
    for r in range(n):
        row = x32[r].reshape(-1).numpy()
        sigma = sigma_frac * (float(row.max()) - float(row.min()))
        for _ in range(samples):
            noise = np.array([rng.normal() * sigma for _ in range(per)], dtype=np.float32)
            noisy = torch.from_numpy((noise + row).astype(np.float32)).reshape(1, *x32.shape[1:])
            grads.append(_target_grad(model, noisy.to(dtype), targets[r:r + 1]).double())
    g = torch.stack(grads).reshape(n, samples, *x32.shape[1:])
    mean, mean_sq = g.mean(1), (g * g).mean(1)
    return {"smoothgrad": mean, "smoothgrad_sq": mean_sq, "vargrad": mean_sq - mean * mean}


def path_method_references(writer, d, model32, x32, targets):
    """IG (Gauss-Legendre and trapezoid, zero baseline) and SmoothGrad references.

    These run the float32 model: the path and noise points sit anywhere, and at a few of them a
    ReLU input is within float32 rounding of 0, where float64 takes the other branch (seen on
    resnet_basic: one of 16 IG points, 3.5% off). Float32 torch on the same points is the fair
    reference; the gradient rules themselves are checked against float64 elsewhere.
    """
    arrays = {}
    zero = torch.zeros_like(x32)
    nodes, w = np.polynomial.legendre.leggauss(16)
    ig = integrated_gradients_ref(model32, x32, targets, 0.5 * (nodes + 1), 0.5 * w, zero)
    arrays["ig_gausslegendre16"] = writer.npy(
        f"{d}/ig_gausslegendre16.npy", ig,
        "integrated gradients, 16 Gauss-Legendre, zeros (torch float32 model)")
    h = 1.0 / 15
    tw = [h / 2] + [h] * 14 + [h / 2]
    ig_t = integrated_gradients_ref(model32, x32, targets, np.linspace(0, 1, 16), tw, zero)
    arrays["ig_trapezoid16"] = writer.npy(
        f"{d}/ig_trapezoid16.npy", ig_t,
        "integrated gradients, 16-point trapezoid, zeros (torch float32 model)")
    sg = smoothgrad_ref(model32, x32, targets, 8, 0.15, 3)
    for variant, value in sg.items():
        arrays[f"{variant}_n8_s015_seed3"] = writer.npy(
            f"{d}/{variant}_n8_s015_seed3.npy", value,
            f"{variant}, 8 samples, sigma 0.15 of the range, Lantern seed 3 (torch float32 model)")
    return arrays


def part_b(writer, spec):
    name, opset = spec["name"], spec["opset"]
    gen = torch.Generator().manual_seed(seed_of(name))
    model32 = randomize(no_inplace(spec["build"]()), gen, spec["input"])
    x32 = torch.randn(spec["input"], generator=gen)
    seed_w = torch.randn(spec["input"][0], 10, generator=gen)

    onnx_bytes = export_onnx(model32, x32, opset)
    if export_onnx(model32, x32, opset) != onnx_bytes:
        raise AssertionError(f"Cannot export {name} deterministically")
    onnx_model = onnx.load_from_string(onnx_bytes)
    onnx.checker.check_model(onnx_model, full_check=True)
    if onnx_model.opset_import[0].version != opset:
        raise AssertionError(f"Cannot export {name} at opset {opset}")

    model = copy.deepcopy(model32).double()
    x = x32.double().requires_grad_(True)
    logits, mid, last = forward_with_taps(model, x, spec)
    with torch.no_grad():
        logits32 = model32(x32)
    n = x.shape[0]
    targets = logits.argmax(1)
    top2 = logits.topk(2, dim=1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    if margin < 1e-3:
        raise AssertionError(f"Cannot pick a stable target for {name}: top-2 margin {margin}")

    values = evaluate_onnx(onnx_model, {"input": to_np(x32)})
    check = {
        "onnx_numpy_float64_vs_torch_float64_logits_max_abs": max_abs(values["logits"],
                                                                      to_np(logits)),
        "torch_float32_vs_float64_logits_max_abs": max_abs(to_np(logits32), to_np(logits)),
        "logits_abs_max": float(logits.abs().max()),
        "top1_top2_margin_min": margin,
    }
    if check["onnx_numpy_float64_vs_torch_float64_logits_max_abs"] > 1e-4 * (
            1 + check["logits_abs_max"]):
        raise AssertionError(f"Cannot reproduce {name} with the ONNX graph: {check}")
    layers = {}
    for key, tensor in (("mid", mid), ("last", last)):
        (oname, optype, diff), also = find_onnx_name(onnx_model, values, to_np(tensor),
                                                      f"{name}.{key}")
        layers[key] = {"onnx_name": oname, "onnx_op": optype, "tap": list(spec[key]),
                       "shape": list(tensor.shape), "onnx_numpy_vs_torch_max_abs": bound(diff),
                       "same_values_also_at": also}

    picked = logits[torch.arange(n), targets].sum()
    g_x, g_mid, g_last = torch.autograd.grad(picked, [x, mid, last], retain_graph=True)
    g_seed = torch.autograd.grad((logits * seed_w.double()).sum(), x)[0]

    one_hot = np.eye(10)[to_np(targets)]
    check["input_gradient_vs_onnx_finite_difference_rel"] = directional_check(
        onnx_model, to_np(x).astype(np.float32).astype(np.float64), to_np(g_x), one_hot, 1)
    check["seed_gradient_vs_onnx_finite_difference_rel"] = directional_check(
        onnx_model, to_np(x).astype(np.float32).astype(np.float64), to_np(g_seed),
        to_np(seed_w).astype(np.float64), 2)
    if max(check["input_gradient_vs_onnx_finite_difference_rel"],
           check["seed_gradient_vs_onnx_finite_difference_rel"]) > 1e-4:
        raise AssertionError(f"Cannot confirm the gradients of {name} on the ONNX graph: {check}")

    special = {}
    for mode in ("guided", "deconvnet"):
        m = copy.deepcopy(model)
        with relu_override(m, mode) as ov:
            xi = x.detach().clone().requires_grad_(True)
            out = m(xi)
            special[mode] = torch.autograd.grad(out[torch.arange(n), targets].sum(), xi)[0]
            if max_abs(to_np(out), to_np(logits)) != 0.0:
                raise AssertionError(f"Cannot override ReLUs of {name}: forward values changed")
            special[mode + "_calls"] = ov.counter["calls"]
    counts = op_counts(onnx_model)
    clip06 = 0
    inits = {i.name: numpy_helper.to_array(i) for i in onnx_model.graph.initializer}
    consts = {n.output[0]: numpy_helper.to_array(_attrs(n)["value"])
              for n in onnx_model.graph.node if n.op_type == "Constant"}
    for node in onnx_model.graph.node:
        if node.op_type == "Clip":
            lo, hi = (inits.get(i, consts.get(i)) for i in node.input[1:3])
            if lo is not None and hi is not None and float(lo) == 0.0 and float(hi) == 6.0:
                clip06 += 1
    relu_like_nodes = counts.get("Relu", 0) + clip06
    if special["guided_calls"] != relu_like_nodes:
        raise AssertionError(f"Cannot override every ReLU of {name}: {special['guided_calls']} "
                             f"torch calls vs {relu_like_nodes} ONNX Relu/Clip(0,6) nodes")

    writer.raw(f"{name}/model.onnx", onnx_bytes, f"{spec['family']} ({spec['builder']})",
               opset=opset)
    ort = onnxruntime_logits(os.path.join(writer.out_dir, name, "model.onnx"), to_np(x32))
    if ort is not None:
        check["onnxruntime_vs_torch_float64_logits_max_abs"] = max_abs(ort, to_np(logits))

    d = name
    arrays = {
        "input": writer.npy(f"{d}/input.npy", x32, "random N(0,1) input"),
        "logits": writer.npy(f"{d}/logits.npy", logits, "logits (torch float64)"),
        "input_gradient": writer.npy(f"{d}/input_gradient.npy", g_x,
                                     "d sum_n logit[n,target_n] / d input"),
        "guided_backprop": writer.npy(f"{d}/guided_backprop.npy", special["guided"],
                                      "guided backprop input gradient of logit[target]"),
        "deconvnet": writer.npy(f"{d}/deconvnet.npy", special["deconvnet"],
                                "deconvnet input gradient of logit[target]"),
        "seed": writer.npy(f"{d}/seed.npy", seed_w, "random N(0,1) seed over the classes"),
        "seed_input_gradient": writer.npy(f"{d}/seed_input_gradient.npy", g_seed,
                                          "d sum_nc seed[n,c]*logit[n,c] / d input"),
    }
    for key, act, grad in (("mid", mid, g_mid), ("last", last, g_last)):
        oname = layers[key]["onnx_name"]
        layers[key]["activation"] = writer.npy(f"{d}/{key}_activation.npy", act,
                                               f"ONNX tensor {oname!r} ({key})")
        layers[key]["gradient"] = writer.npy(f"{d}/{key}_gradient.npy", grad,
                                             f"d sum_n logit[n,target_n] / d tensor {oname!r}")
    # CAM-family references at the last layer, from the float64 activations and gradients:
    # Grad-CAM (Selvaraju et al. Eq. 1-2), Grad-CAM++ as pytorch-grad-cam's grad_cam_plusplus.py,
    # and guided Grad-CAM with bilinear upsampling (F.interpolate, align_corners=False).
    with torch.no_grad():
        a, g = last.double(), g_last.double()
        gradcam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
        g2 = g ** 2
        aij = g2 / (2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g2 * g + 1e-6)
        aij = torch.where(g != 0, aij, torch.zeros_like(aij))
        w_pp = (torch.clamp(g, min=0) * aij).sum(dim=(2, 3), keepdim=True)
        gradcam_pp = F.relu((w_pp * a).sum(1, keepdim=True))
        up = F.interpolate(gradcam, size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)
        guided_gradcam = special["guided"].double() * up
    arrays["gradcam_last"] = writer.npy(f"{d}/gradcam_last.npy", gradcam,
                                        "Grad-CAM at the last layer, ReLU applied [N,1,h,w]")
    arrays["gradcampp_last"] = writer.npy(f"{d}/gradcampp_last.npy", gradcam_pp,
                                          "Grad-CAM++ at the last layer (pytorch-grad-cam) [N,1,h,w]")
    arrays["guided_gradcam_last"] = writer.npy(
        f"{d}/guided_gradcam_last.npy", guided_gradcam,
        "guided backprop x bilinear-upsampled Grad-CAM at the last layer [N,C,H,W]")
    if name in PATH_METHOD_MODELS:
        arrays.update(path_method_references(writer, d, model32, x32, targets))
    return {
        "name": name,
        "family": spec["family"],
        "builder": spec["builder"],
        "opset": opset,
        "onnx": f"{name}/model.onnx",
        "onnx_bytes": len(onnx_bytes),
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "op_counts": counts,
        "parameters": sum(p.numel() for p in model32.parameters()),
        "input_shape": list(x32.shape),
        "num_classes": 10,
        "targets": [int(t) for t in targets],
        "rng_seed": seed_of(name),
        "relu_like_onnx_nodes": relu_like_nodes,
        "layers": layers,
        "arrays": arrays,
        "check": stable_check(check),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, OUT_REL))
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(REPO),
                                                         "shared/models/imagenet"))
    parser.add_argument("--only", nargs="*", help="Part B model names to build (debugging)")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    # One thread: float32 torch diagnostics in the manifest then do not depend on the machine's
    # core count (the float64 references already do not, checked with 1 and 2 threads).
    torch.set_num_threads(1)
    check_relu_rules()
    writer = Writer(args.out)
    os.makedirs(args.out, exist_ok=True)

    models = []
    for spec in MODELS:
        if args.only and spec["name"] not in args.only:
            continue
        print(f"part B: {spec['name']} (opset {spec['opset']})", flush=True)
        models.append(part_b(writer, spec))
    imagenet = None
    if not args.only:
        print("part A: imagenet mobilenet_v2", flush=True)
        imagenet = part_a(writer, args.shared)

    manifest = {
        "schema": 1,
        "generator": "tools/make_torch_fixtures.py",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "onnx": onnx.__version__, "numpy": np.__version__},
        "precision": "References are computed by the torch model converted to float64 (the "
                     "float32 weights upcast exactly) and saved as float32 .npy. The exported "
                     "ONNX is float32 with BatchNorm folded into Conv by the exporter (float32 "
                     "rounding), so an ORT float32 run differs from these by float32 noise; "
                     "see each model's check block for measured differences.",
        "checks": "check blocks are generation-time diagnostics. *_max_abs: measured max "
                  "|difference|; *_finite_difference_rel: |<grad, v> - central difference "
                  "along v| / sum |grad * v| for a random v, on the ONNX graph; both rounded up "
                  "to a power of ten. onnx_numpy_* is this script's NumPy float64 evaluation of "
                  "the exported ONNX; torch_float32_* is the float32 torch model (a guide for "
                  "float32 tolerances).",
        "paths": "Paths are relative to this manifest's folder, except "
                 "imagenet_mobilenet_v2.model, which is relative to the repository root.",
        "model_keys": {
            "onnx": "float32 ONNX, input 'input' [batch,3,H,W] (batch dynamic), output "
                    "'logits' [batch,10]",
            "targets": "argmax of the float64 logits per batch item (top-2 margin in check)",
            "layers.mid / layers.last": "a mid-network tensor and the last 4-D activation "
                                        "feeding the head: onnx_name is the ONNX value name, "
                                        "activation its values, gradient d sum_n "
                                        "logit[n,target_n] / d it; tap says where torch took "
                                        "it (module output, or the k-th F.relu call); "
                                        "same_values_also_at lists other ONNX names holding "
                                        "identical values",
            "arrays.input": "float32 input (N(0,1) from the model's rng_seed)",
            "arrays.logits": "logits [batch,10]",
            "arrays.input_gradient": "d sum_n logit[n,target_n] / d input",
            "arrays.guided_backprop": "input gradient of the same objective under "
                                      "rules.guided_backprop",
            "arrays.deconvnet": "input gradient of the same objective under rules.deconvnet",
            "arrays.seed": "[batch,10] random weights over the classes",
            "arrays.seed_input_gradient": "d sum_nc seed[n,c] * logit[n,c] / d input",
            "op_counts": "ONNX node count by op type",
            "relu_like_onnx_nodes": "Relu + Clip(0,6) nodes, equal to the torch ReLU calls "
                                    "overridden for guided backprop / deconvnet",
        },
        "batch": "For batch N, target_n = argmax logits[n]; gradients are of "
                 "sum_n logits[n, target_n] (batch items are independent).",
        "rules": {"relu_like": RELU_LIKE_RULE, "guided_backprop": GUIDED_RULE,
                  "deconvnet": DECONV_RULE, "maxpool": MAXPOOL_RULE,
                  "eval_mode": "Models are in eval mode: BatchNorm uses (randomized) running "
                               "stats, Dropout and StochasticDepth are identity."},
        "imagenet_mobilenet_v2": imagenet,
        "models": models,
        "files": dict(sorted(writer.files.items())),
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(args.out)
                for fn in fns)
    print(f"wrote {len(writer.files) + 1} files, {total} bytes to {args.out}")
    if total > SIZE_LIMIT_BYTES:
        raise AssertionError(f"Cannot keep fixtures small: {total} bytes > {SIZE_LIMIT_BYTES}")


if __name__ == "__main__":
    main()
