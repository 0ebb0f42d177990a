#!/usr/bin/python3
"""Convert the TF.js graph-model emotion classifier of @vladmandic/human to ONNX.

Offline and dependency-light: needs only numpy and the `onnx` package (Debian's python3-onnx,
1.12, is enough). Get the TF.js model files with

    cd /tmp && npm pack @vladmandic/human@3.3.6 && mkdir -p human \
        && tar xzf vladmandic-human-3.3.6.tgz -C human

and run (from the repository root)

    /usr/bin/python3 tools/convert_emotion.py /tmp/human/package/models/emotion.json \
        examples/models/emotion.onnx

The converter is generic over the small op set that TF.js graph models of plain CNNs use, but it
only claims what it checks: unsupported ops or attributes raise instead of converting silently.

Layout: TF graphs are NHWC; the ONNX graph is NCHW throughout. Rather than inserting runtime
Transpose nodes (which would hide the feature maps that Grad-CAM needs behind layout shuffles),
weights are transposed at conversion time and axis-valued attributes (Mean reduction indices,
BiasAdd broadcasting) are remapped. This works because every 4-D tensor in the graph is an
activation in NHWC; the converter tracks ranks and refuses constructs where that is not so.

Head: if the TF graph output is Softmax (possibly behind Identity), the Softmax is dropped and its
input becomes the ONNX output `logits`, because explanation methods want pre-softmax scores.
"""

import argparse
import base64
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
# Keras/TF wrap every layer in this scope; dropping it keeps names readable in ONNX tools.
NAME_PREFIXES = ("StatefulPartitionedCall/model_1/", "StatefulPartitionedCall/")

NP_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "float16": np.float16,
}


def fail(msg):
    raise SystemExit(f"convert_emotion: {msg}")


def short_name(name):
    for p in NAME_PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


def load_weights(model_json, model_dir):
    """Read every weight of the manifest, dequantizing uint8/uint16/float16 storage to float32."""
    out = {}
    for group in model_json["weightsManifest"]:
        blob = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            stored = quant["dtype"] if quant else w["dtype"]
            if stored not in NP_DTYPES:
                fail(f'Cannot read weight "{w["name"]}": dtype "{stored}" is not supported')
            np_dtype = np.dtype(NP_DTYPES[stored]).newbyteorder("<")
            nbytes = count * np_dtype.itemsize
            if offset + nbytes > len(blob):
                fail(f'Cannot read weight "{w["name"]}": needs bytes {offset}..{offset + nbytes}, '
                     f"but the weight files hold {len(blob)}")
            arr = np.frombuffer(blob, dtype=np_dtype, count=count, offset=offset).reshape(shape)
            offset += nbytes
            if quant:
                if stored == "float16":
                    arr = arr.astype(np.float32)
                elif "scale" in quant:
                    # TF.js affine quantization: value = q * scale + min.
                    arr = arr.astype(np.float32) * np.float32(quant["scale"]) + np.float32(
                        quant["min"])
                else:
                    fail(f'Cannot dequantize "{w["name"]}": {stored} without scale/min')
                if w["dtype"] == "int32":
                    arr = np.round(arr).astype(np.int32)
            out[w["name"]] = np.array(arr, dtype=np.float32 if arr.dtype.kind == "f" else arr.dtype)
        if offset != len(blob):
            fail(f"Cannot read weights: manifest covers {offset} bytes but files hold {len(blob)}")
    return out


def attr_ints(node, key, default=None):
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    return [int(i) for i in a.get("list", {}).get("i", [])]


def attr_str(node, key, default=None):
    a = node.get("attr", {}).get(key)
    if a is None or "s" not in a:
        return default
    return base64.b64decode(a["s"]).decode()


def attr_strs(node, key):
    a = node.get("attr", {}).get(key)
    if a is None:
        return []
    return [base64.b64decode(s).decode() for s in a.get("list", {}).get("s", [])]


def attr_float(node, key, default=None):
    a = node.get("attr", {}).get(key)
    return default if a is None or "f" not in a else float(a["f"])


def attr_bool(node, key, default=False):
    a = node.get("attr", {}).get(key)
    return default if a is None or "b" not in a else bool(a["b"])


def same_pads(in_hw, kernel_hw, strides_hw, dilations_hw):
    """TF "SAME" padding as explicit ONNX pads: the odd pixel goes to the end (bottom/right)."""
    begins, ends, outs = [], [], []
    for i, k, s, d in zip(in_hw, kernel_hw, strides_hw, dilations_hw):
        o = math.ceil(i / s)
        total = max((o - 1) * s + (k - 1) * d + 1 - i, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
        outs.append(o)
    return begins + ends, outs


def valid_out(in_hw, kernel_hw, strides_hw, dilations_hw):
    return [(i - (k - 1) * d - 1) // s + 1 for i, k, s, d in zip(in_hw, kernel_hw, strides_hw,
                                                                   dilations_hw)]


class Converter:
    def __init__(self, model_json, weights):
        self.graph = model_json["modelTopology"]["node"]
        self.by_name = {n["name"]: n for n in self.graph}
        self.weights = weights
        self.nodes = []
        self.inits = {}
        # ONNX tensor name and NCHW shape (None for the batch axis) of each converted TF tensor.
        self.tensors = {}
        self.shapes = {}
        self.used_names = set()
        self.consumers = {}
        for n in self.graph:
            for i in n.get("input", []):
                self.consumers.setdefault(i.split(":")[0].lstrip("^"), []).append(n)

    # -- naming -------------------------------------------------------------------------------

    def unique(self, name):
        base, k = name, 1
        while name in self.used_names:
            k += 1
            name = f"{base}_{k}"
        self.used_names.add(name)
        return name

    def const_name(self, tf_name, role):
        """Readable initializer name; anonymous TF consts ("unknown_9") are named by consumer."""
        if tf_name.startswith("unknown"):
            users = self.consumers.get(tf_name, [])
            if len(users) == 1:
                return self.unique(f"{short_name(users[0]['name'])}/{role}")
        return self.unique(short_name(tf_name))

    # -- constants ----------------------------------------------------------------------------

    def const_value(self, tf_name):
        tf_name = tf_name.split(":")[0]
        node = self.by_name.get(tf_name)
        if node is None or node["op"] != "Const":
            fail(f'Cannot convert: "{tf_name}" must be a constant, got op '
                 f'{node["op"] if node else "missing"}')
        if tf_name in self.weights:
            return self.weights[tf_name]
        tensor = node.get("attr", {}).get("value", {}).get("tensor")
        if tensor is None:
            fail(f'Cannot convert: constant "{tf_name}" has neither a weight nor an inline value')
        dtype = tensor.get("dtype")
        dims = [int(d.get("size", 0)) for d in tensor.get("tensorShape", {}).get("dim", [])]
        if dtype == "DT_INT32":
            vals = [int(v) for v in tensor.get("intVal", [])]
            return np.array(vals, dtype=np.int32).reshape(dims) if vals else np.zeros(dims,
                                                                                    np.int32)
        if dtype == "DT_FLOAT":
            vals = [float(v) for v in tensor.get("floatVal", [])]
            arr = np.array(vals, dtype=np.float32)
            return np.broadcast_to(arr, dims).copy() if arr.size == 1 else arr.reshape(dims)
        fail(f'Cannot convert: inline constant "{tf_name}" has dtype {dtype}')

    def add_init(self, name, arr):
        self.inits[name] = numpy_helper.from_array(np.ascontiguousarray(arr), name)
        return name

    # -- activations --------------------------------------------------------------------------

    def act(self, tf_input):
        key = tf_input.split(":")[0]
        if key not in self.tensors:
            self.convert(self.by_name[key])
        return self.tensors[key]

    def shape_of(self, tf_input):
        self.act(tf_input)
        return self.shapes[tf_input.split(":")[0]]

    def emit(self, op, inputs, output, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def convert(self, node):
        name = node["name"]
        if name in self.tensors:
            return
        op = node["op"]
        handler = getattr(self, f"op_{op.lstrip('_')}", None)
        if handler is None:
            fail(f'Cannot convert node "{name}": op {op} is not supported')
        handler(node)

    def set_out(self, node, onnx_name, shape):
        self.tensors[node["name"]] = onnx_name
        self.shapes[node["name"]] = shape

    def op_Placeholder(self, node):
        dims = [int(d.get("size", -1)) for d in node["attr"]["shape"]["shape"]["dim"]]
        if len(dims) != 4 or dims[1] <= 0 or dims[2] <= 0 or dims[3] <= 0:
            fail(f'Cannot convert input "{node["name"]}": shape {dims} is not [N,H,W,C] with '
                 "static H, W, C")
        self.used_names.add(INPUT_NAME)
        self.set_out(node, INPUT_NAME, [None, dims[3], dims[1], dims[2]])

    def op_Identity(self, node):
        src = node["input"][0].split(":")[0]
        self.act(src)
        self.tensors[node["name"]] = self.tensors[src]
        self.shapes[node["name"]] = self.shapes[src]

    def check_nhwc(self, node):
        fmt = attr_str(node, "data_format", "NHWC")
        if fmt != "NHWC":
            fail(f'Cannot convert node "{node["name"]}": data_format {fmt} is not NHWC')

    def conv_common(self, node, depthwise):
        self.check_nhwc(node)
        x = self.act(node["input"][0])
        in_shape = self.shapes[node["input"][0].split(":")[0]]
        w_tf = node["input"][1].split(":")[0]
        w = self.const_value(w_tf).astype(np.float32)
        strides = attr_ints(node, "strides", [1, 1, 1, 1])
        dil = attr_ints(node, "dilations", [1, 1, 1, 1])
        if strides[0] != 1 or strides[3] != 1 or dil[0] != 1 or dil[3] != 1:
            fail(f'Cannot convert node "{node["name"]}": strides {strides} / dilations {dil} '
                 "act on batch or channel")
        kh, kw = int(w.shape[0]), int(w.shape[1])
        if depthwise:
            # TF depthwise filter [H, W, C, M] -> ONNX grouped conv [C*M, 1, H, W], group C.
            c, m = int(w.shape[2]), int(w.shape[3])
            w_onnx = w.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
            group, out_c = c, c * m
        else:
            # TF filter [H, W, I, O] -> ONNX [O, I, H, W].
            w_onnx = w.transpose(3, 2, 0, 1)
            group, out_c = 1, int(w.shape[3])
        if in_shape[1] != (group if depthwise else w.shape[2]):
            fail(f'Cannot convert node "{node["name"]}": input has {in_shape[1]} channels, '
                 f"filter expects {w.shape[2]}")
        pad = attr_str(node, "padding")
        s_hw, d_hw = strides[1:3], dil[1:3]
        if pad == "SAME":
            pads, out_hw = same_pads(in_shape[2:], [kh, kw], s_hw, d_hw)
        elif pad == "VALID":
            pads, out_hw = [0, 0, 0, 0], valid_out(in_shape[2:], [kh, kw], s_hw, d_hw)
        else:
            fail(f'Cannot convert node "{node["name"]}": padding {pad} is not SAME or VALID')
        w_name = self.add_init(self.const_name(w_tf, "weights"), w_onnx)
        attrs = dict(kernel_shape=[kh, kw], strides=s_hw, dilations=d_hw, pads=pads, group=group)
        return x, w_name, attrs, [None, out_c, *out_hw]

    def op_Conv2D(self, node):
        x, w, attrs, shape = self.conv_common(node, depthwise=False)
        out = self.unique(short_name(node["name"]))
        self.emit("Conv", [x, w], out, out, **attrs)
        self.set_out(node, out, shape)

    def op_DepthwiseConv2dNative(self, node):
        x, w, attrs, shape = self.conv_common(node, depthwise=True)
        out = self.unique(short_name(node["name"]))
        self.emit("Conv", [x, w], out, out, **attrs)
        self.set_out(node, out, shape)

    def fused(self, node, depthwise):
        fused = attr_strs(node, "fused_ops")
        x, w, attrs, shape = self.conv_common(node, depthwise)
        base = short_name(node["name"])
        extra = node["input"][2:]
        if not fused or fused[0] != "BiasAdd":
            fail(f'Cannot convert node "{node["name"]}": fused_ops {fused} do not start with '
                 "BiasAdd")
        if len(extra) != 1 or int(node["attr"].get("num_args", {}).get("i", 1)) != 1:
            fail(f'Cannot convert node "{node["name"]}": expected 1 bias argument, got {extra}')
        b_tf = extra[0].split(":")[0]
        b = self.const_value(b_tf).astype(np.float32).reshape(-1)
        if b.shape[0] != shape[1]:
            fail(f'Cannot convert node "{node["name"]}": bias has {b.shape[0]} values, conv has '
                 f"{shape[1]} channels")
        b_name = self.add_init(self.const_name(b_tf, "bias"), b)
        acts = fused[1:]
        if len(acts) > 1 or (acts and acts[0] not in ("Relu", "Relu6")):
            fail(f'Cannot convert node "{node["name"]}": fused_ops {fused} are not supported')
        # The fused node's TF name is that of its last op; the ONNX tensor with that name is the
        # one downstream TF nodes read, so the conv gets a "/conv" suffix when an activation
        # follows (e.g. "block1_conv1_act/Relu/conv" then "block1_conv1_act/Relu").
        conv_out = self.unique(f"{base}/conv" if acts else base)
        self.emit("Conv", [x, w, b_name], conv_out, conv_out, **attrs)
        out = conv_out
        if acts:
            out = self.unique(base)
            if acts[0] == "Relu":
                self.emit("Relu", [conv_out], out, out)
            else:
                lo = self.add_init(self.unique(f"{base}/min"), np.array(0, np.float32))
                hi = self.add_init(self.unique(f"{base}/max"), np.array(6, np.float32))
                self.emit("Clip", [conv_out, lo, hi], out, out)
        self.set_out(node, out, shape)

    def op_FusedConv2D(self, node):
        self.fused(node, depthwise=False)

    def op_FusedDepthwiseConv2dNative(self, node):
        self.fused(node, depthwise=True)

    def channel_const(self, tf_name, shape, role):
        """A constant for a binary op with an activation: remap NHWC broadcasting to NCHW."""
        v = self.const_value(tf_name).astype(np.float32)
        if len(shape) == 4:
            if v.ndim == 4:
                v = v.transpose(0, 3, 1, 2)
            elif v.ndim == 1 and v.shape[0] in (1, shape[1]):
                v = v.reshape(-1, 1, 1)
            elif v.ndim != 0:
                fail(f'Cannot convert: constant "{tf_name}" of shape {list(v.shape)} cannot be '
                     "broadcast to NCHW without knowing its meaning")
        return self.add_init(self.const_name(tf_name, role), v)

    def binary(self, node, onnx_op):
        ins = [i.split(":")[0] for i in node["input"] if not i.startswith("^")]
        if len(ins) != 2:
            fail(f'Cannot convert node "{node["name"]}": {node["op"]} needs 2 inputs')
        is_const = [self.by_name[i]["op"] == "Const" for i in ins]
        if all(is_const):
            fail(f'Cannot convert node "{node["name"]}": constant folding is not supported')
        act_shape = next(self.shape_of(i) for i, c in zip(ins, is_const) if not c)
        names = []
        for i, c in zip(ins, is_const):
            names.append(self.channel_const(i, act_shape, "value") if c else self.act(i))
        shapes = [self.shapes[i] for i, c in zip(ins, is_const) if not c]
        if len(shapes) == 2 and shapes[0] != shapes[1]:
            fail(f'Cannot convert node "{node["name"]}": shapes {shapes} differ')
        out = self.unique(short_name(node["name"]))
        self.emit(onnx_op, names, out, out)
        self.set_out(node, out, act_shape)

    def op_Add(self, node):
        self.binary(node, "Add")

    def op_AddV2(self, node):
        self.binary(node, "Add")

    def op_BiasAdd(self, node):
        self.check_nhwc(node)
        self.binary(node, "Add")

    def op_Mul(self, node):
        self.binary(node, "Mul")

    def op_Sub(self, node):
        self.binary(node, "Sub")

    def unary(self, node, onnx_op, **attrs):
        src = node["input"][0].split(":")[0]
        x = self.act(src)
        out = self.unique(short_name(node["name"]))
        self.emit(onnx_op, [x], out, out, **attrs)
        self.set_out(node, out, self.shapes[src])

    def op_Relu(self, node):
        self.unary(node, "Relu")

    def op_Relu6(self, node):
        src = node["input"][0].split(":")[0]
        x = self.act(src)
        out = self.unique(short_name(node["name"]))
        lo = self.add_init(self.unique(f"{out}/min"), np.array(0, np.float32))
        hi = self.add_init(self.unique(f"{out}/max"), np.array(6, np.float32))
        self.emit("Clip", [x, lo, hi], out, out)
        self.set_out(node, out, self.shapes[src])

    def op_Softmax(self, node):
        if len(self.shape_of(node["input"][0])) != 2:
            fail(f'Cannot convert node "{node["name"]}": Softmax on a non-2-D tensor')
        self.unary(node, "Softmax", axis=-1)

    def pool(self, node, onnx_op):
        self.check_nhwc(node)
        src = node["input"][0].split(":")[0]
        x = self.act(src)
        in_shape = self.shapes[src]
        k = attr_ints(node, "ksize")
        s = attr_ints(node, "strides")
        if k[0] != 1 or k[3] != 1 or s[0] != 1 or s[3] != 1:
            fail(f'Cannot convert node "{node["name"]}": pooling over batch or channel')
        pad = attr_str(node, "padding")
        if pad == "SAME":
            pads, out_hw = same_pads(in_shape[2:], k[1:3], s[1:3], [1, 1])
        elif pad == "VALID":
            pads, out_hw = [0, 0, 0, 0], valid_out(in_shape[2:], k[1:3], s[1:3], [1, 1])
        else:
            fail(f'Cannot convert node "{node["name"]}": padding {pad} is not SAME or VALID')
        out = self.unique(short_name(node["name"]))
        # MaxPool pads with -inf and AveragePool (count_include_pad=0) leaves pads out of the
        # count, which is exactly what TF's SAME pooling does.
        self.emit(onnx_op, [x], out, out, kernel_shape=k[1:3], strides=s[1:3], pads=pads)
        self.set_out(node, out, [None, in_shape[1], *out_hw])

    def op_MaxPool(self, node):
        self.pool(node, "MaxPool")

    def op_AvgPool(self, node):
        self.pool(node, "AveragePool")

    def op_Mean(self, node):
        src = node["input"][0].split(":")[0]
        x = self.act(src)
        in_shape = self.shapes[src]
        axes = sorted(int(a) % len(in_shape) for a in
                      np.atleast_1d(self.const_value(node["input"][1])).tolist())
        keep = attr_bool(node, "keep_dims", False)
        if len(in_shape) == 4:
            nhwc_to_nchw = {0: 0, 1: 2, 2: 3, 3: 1}
            onnx_axes = sorted(nhwc_to_nchw[a] for a in axes)
            if not keep and onnx_axes != [2, 3]:
                fail(f'Cannot convert node "{node["name"]}": Mean over NHWC axes {axes} without '
                     "keep_dims changes the layout")
        else:
            onnx_axes = axes
        out = self.unique(short_name(node["name"]))
        self.emit("ReduceMean", [x], out, out, axes=onnx_axes, keepdims=int(keep))
        shape = [d for i, d in enumerate(in_shape) if i not in onnx_axes] if not keep else [
            1 if i in onnx_axes else d for i, d in enumerate(in_shape)]
        self.set_out(node, out, shape)

    def op_Reshape(self, node):
        src = node["input"][0].split(":")[0]
        x = self.act(src)
        in_shape = self.shapes[src]
        target = [int(v) for v in np.atleast_1d(self.const_value(node["input"][1])).tolist()]
        if len(in_shape) == 4 and not (in_shape[2] == 1 and in_shape[3] == 1):
            fail(f'Cannot convert node "{node["name"]}": reshaping an NHWC map with spatial '
                 f"size {in_shape[2:]} depends on layout")
        if len(target) == 4:
            fail(f'Cannot convert node "{node["name"]}": reshape to 4-D is not supported')
        t_name = self.add_init(self.unique(f"{short_name(node['name'])}/shape"),
                               np.array(target, np.int64))
        out = self.unique(short_name(node["name"]))
        self.emit("Reshape", [x, t_name], out, out)
        known = int(np.prod([d for d in in_shape[1:]]))
        self.set_out(node, out, [None] + [known if d == -1 else d for d in target[1:]])

    def op_FusedBatchNormV3(self, node):
        self.check_nhwc(node)
        if attr_bool(node, "is_training", False):
            fail(f'Cannot convert node "{node["name"]}": batch norm in training mode')
        src = node["input"][0].split(":")[0]
        x = self.act(src)
        names = [self.add_init(self.const_name(i.split(":")[0], r),
                               self.const_value(i).astype(np.float32).reshape(-1))
                 for i, r in zip(node["input"][1:5], ["scale", "offset", "mean", "variance"])]
        out = self.unique(short_name(node["name"]))
        self.emit("BatchNormalization", [x, *names], out, out,
                  epsilon=attr_float(node, "epsilon", 1e-4))
        self.set_out(node, out, self.shapes[src])

    op_FusedBatchNorm = op_FusedBatchNormV3


def find_output(model_json, graph):
    sig = model_json.get("userDefinedMetadata", {}).get("signature", {}).get("outputs", {})
    names = [v["name"].split(":")[0] for v in sig.values()]
    if len(names) != 1:
        consumed = {i.split(":")[0].lstrip("^") for n in graph for i in n.get("input", [])}
        names = [n["name"] for n in graph if n["name"] not in consumed and n["op"] != "Const"]
    if len(names) != 1:
        fail(f"Cannot find the model output: candidates {names}, expected exactly one")
    return names[0]


def convert(json_path):
    model_json = json.load(open(json_path))
    if model_json.get("format") != "graph-model":
        fail(f'Cannot convert "{json_path}": format is {model_json.get("format")}, expected '
             "graph-model")
    weights = load_weights(model_json, os.path.dirname(os.path.abspath(json_path)))
    conv = Converter(model_json, weights)
    by_name = conv.by_name
    out_tf = find_output(model_json, conv.graph)
    # Skip Identity wrappers, then drop a trailing Softmax so the output is logits.
    while by_name[out_tf]["op"] == "Identity":
        out_tf = by_name[out_tf]["input"][0].split(":")[0]
    dropped_softmax = by_name[out_tf]["op"] == "Softmax"
    if dropped_softmax:
        out_tf = by_name[out_tf]["input"][0].split(":")[0]
    conv.convert(by_name[out_tf])
    out_shape = conv.shapes[out_tf]
    if len(out_shape) != 2:
        fail(f"Cannot convert: output has rank {len(out_shape)}, expected [N, classes]")
    # Rename the final tensor to "logits" (node name stays the TF one).
    final = conv.tensors[out_tf]
    for n in conv.nodes:
        n.input[:] = [OUTPUT_NAME if i == final else i for i in n.input]
        n.output[:] = [OUTPUT_NAME if o == final else o for o in n.output]

    inputs = [n for n in conv.graph if n["op"] == "Placeholder"]
    if len(inputs) != 1:
        fail(f"Cannot convert: {len(inputs)} Placeholder inputs, expected 1")
    in_shape = conv.shapes[inputs[0]["name"]]
    g = helper.make_graph(
        conv.nodes,
        "emotion",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", *in_shape[1:]])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", out_shape[1]])],
        initializer=list(conv.inits.values()),
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lantern tools/convert_emotion.py",
                              producer_version="1")
    model.ir_version = 8
    # Shape inference records every intermediate activation (with the symbolic batch axis) as a
    # value info, so tools can list the layers and their shapes without running the model.
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    model.doc_string = (
        "Emotion classifier (FER-2013, 7 classes) from @vladmandic/human@3.3.6 models/emotion.json "
        "(TF.js graph model; originally oarriaga/face_classification, MIT). Input: grayscale "
        "[N,1,64,64], (gray - 0.5) * 2 with gray in [0,1]. Output: pre-softmax logits"
        + (" (TF Softmax dropped)." if dropped_softmax else "."))
    meta = {"labels": "angry,disgust,fear,happy,sad,surprise,neutral",
            "source": "npm:@vladmandic/human@3.3.6/models/emotion.json",
            "softmax_removed": str(dropped_softmax).lower(),
            # Read by Lantern's `image` preprocess when a pipeline does not set its own.
            "lantern.preprocess": '{"preset":"grayscale","mean":[0.5],"std":[0.5]}'}
    for k, v in meta.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(model, full_check=True)
    return model, dropped_softmax


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_json", help="path to emotion.json (weights .bin alongside)")
    ap.add_argument("output", help="output .onnx path")
    args = ap.parse_args(argv)
    model, dropped = convert(args.model_json)
    data = model.SerializeToString()
    with open(args.output, "wb") as f:
        f.write(data)
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"wrote {args.output}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    print(f"nodes {len(model.graph.node)}, ops {ops}, softmax dropped: {dropped}")


if __name__ == "__main__":
    main(sys.argv[1:])
