#!/usr/bin/python3
"""PyTorch side of `deno task bench`: a worker that times the same cases as Lantern.

Run with Debian's Python (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 bench/torch_bench.py export OUT.onnx   # random-weight ResNet-50 (seed 0)
    /usr/bin/python3 bench/torch_bench.py serve --threads 2 # JSON lines on stdin/stdout

`bench/main.ts` starts `serve` once and sends one JSON object per line; every reply is one JSON
line. Requests:

    {"op": "load", "model": "mobilenet_v2"|"resnet50", "onnx": PATH, "input": NPY_OUT}
        builds the torch model, writes the [16,3,224,224] input (8 photos and their mirror
        images) to NPY_OUT, runs one batch-16 backward to bring the allocator to its steady
        state, and returns the top-1 class of each image ("targets").
    {"op": "run", "case": "forward"|"grad"|"gradcam"|"ig", "batch": B, "target": [...],
     "steps": S, "internal_batch": K, "save": NPY_OUT?, "memory": bool?}
        runs the case once and returns its wall time in ms; "save" writes the result (logits,
        input gradient, CAM or attribution) for Lantern to compare against; "memory" resets the
        peak RSS before the run and returns it after (resource.getrusage maxrss).
    {"op": "actmax", "steps": S, "seed": 0}
        runs S steps of the activation-max loop (see `activation_max_steps`) and returns the
        loop's wall time in ms and its steps per second.
    {"op": "lime", "input": NPY, "target": T, "samples": S, "internal_batch": K}
        segments the [1,3,224,224] input with skimage quickshift (once, cached; the first time
        is reported as "segmentation_ms"), then runs the S perturbed inputs through the model
        K at a time and returns the time of the S forward passes (mask fill, forward, softmax)
        in ms.
    {"op": "gemm", "n": N, "threads": [T, ...]}
        returns "gflops": torch.mm's GFLOP/s on n×n matrices for each thread count (the
        roofline of `bench/roofline.ts`); the worker's thread count is restored after.
    {"op": "quit"}

Every case runs in float32 (torch eager, no JIT) on `--threads` intra-op threads. Parameters have
requires_grad off, so autograd computes input (or layer) gradients only, as
Lantern's gradient graphs do.
"""

import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np
import onnx
import torch
import torchvision
from PIL import Image
from torchvision import transforms

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))
# Importing tools/make_torch_fixtures.py must not leave a __pycache__ in the checkout.
sys.dont_write_bytecode = True

MAX_BATCH = 16
SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data"
# Eight photos, each as is and mirrored, make the 16 inputs. Real photos rather than noise: on
# N(0,1) noise many ReLU6 inputs sit so close to 0 or 6 that float32 rounding flips their masks,
# and the input gradients of torch float32 and float64 already differ by 3% there.
PHOTOS = [
    f"{SKIMAGE_DATA}/chelsea.png",
    f"{SKIMAGE_DATA}/coffee.png",
    f"{SKIMAGE_DATA}/astronaut.png",
    f"{SKIMAGE_DATA}/rocket.jpg",
    f"{SKIMAGE_DATA}/motorcycle_left.png",
    f"{SKIMAGE_DATA}/hubble_deep_field.jpg",
    f"{SKIMAGE_DATA}/camera.png",
    "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def build_resnet50():
    """torchvision ResNet-50 with the random initialization of torch.manual_seed(0), eval mode."""
    torch.manual_seed(0)
    return torchvision.models.resnet50().eval()


def export_resnet50(path):
    """Export the seed-0 ResNet-50 to ONNX opset 13 with a dynamic batch axis."""
    model = build_resnet50()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.onnx.export(
        model,
        torch.zeros(1, 3, 224, 224),
        tmp,
        opset_version=13,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    onnx.checker.check_model(onnx.load(tmp))
    os.replace(tmp, path)


def photo_batch():
    """[16,3,224,224]: the photos with torchvision's ImageNet preprocessing, then mirrored."""
    tf = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p in PHOTOS])
    return torch.cat([x, torch.flip(x, dims=[3])]).contiguous()


def load_model(name, onnx_path):
    """The torch model matching Lantern's ONNX file, and its Grad-CAM layer (a module)."""
    if name == "mobilenet_v2":
        # Imported here: the fixture script pulls in scipy and the NumPy ONNX evaluator.
        from make_torch_fixtures import load_imagenet_mobilenet_v2

        model = load_imagenet_mobilenet_v2(onnx.load(onnx_path))
        layer = model.features  # its output is ONNX "697", Lantern's default Grad-CAM layer
    elif name == "resnet50":
        model = build_resnet50()
        layer = model.layer4  # input of the global average pool, as Lantern's default
    else:
        raise ValueError(f'Cannot load model "{name}": expected mobilenet_v2 or resnet50')
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), layer


def peak_rss_bytes():
    """Peak RSS of this process since start or the last reset (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss():
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); return whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def one_hot(targets, classes=1000):
    seed = torch.zeros(len(targets), classes)
    seed[torch.arange(len(targets)), torch.tensor(targets)] = 1.0
    return seed


def input_grad(model, x, targets):
    """Gradient of logit targets[i] of row i with respect to the input (one backward pass)."""
    x = x.clone().requires_grad_(True)
    out = model(x)
    (g,) = torch.autograd.grad(out, x, grad_outputs=one_hot(targets))
    return g


def gradcam(model, layer, x, targets):
    """Grad-CAM at `layer`: ReLU(sum_k mean(dy/dA_k) A_k), gradient taken at the layer only."""
    acts = {}

    def hook(_module, _inputs, output):
        # A fresh leaf: backward stops at the layer, as in Lantern's graph (wrt = layer).
        acts["a"] = output.detach().requires_grad_(True)
        return acts["a"]

    handle = layer.register_forward_hook(hook)
    try:
        out = model(x)
    finally:
        handle.remove()
    a = acts["a"]
    (g,) = torch.autograd.grad(out, a, grad_outputs=one_hot(targets))
    weights = g.mean(dim=(2, 3), keepdim=True)
    return torch.relu((weights * a).sum(dim=1, keepdim=True)).detach()


def integrated_gradients(model, x, targets, steps, internal_batch):
    """IG from a zero baseline with `steps` Gauss-Legendre points, `internal_batch` per pass.

    Like Lantern's method it also runs the baseline forward once, for the completeness check.
    """
    nodes, w = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32)
    weights = torch.tensor(w / 2, dtype=torch.float32)
    baseline = torch.zeros_like(x)
    attributions = []
    for i in range(x.shape[0]):
        xi, bi = x[i:i + 1], baseline[i:i + 1]
        integral = torch.zeros_like(xi)
        for start in range(0, steps, internal_batch):
            a = alphas[start:start + internal_batch].view(-1, 1, 1, 1)
            points = bi + a * (xi - bi)
            g = input_grad(model, points, [targets[i]] * points.shape[0])
            integral += (weights[start:start + internal_batch].view(-1, 1, 1, 1) * g).sum(
                0, keepdim=True)
        attributions.append((xi - bi) * integral)
    with torch.inference_mode():
        model(baseline)
    return torch.cat(attributions)


def smoothgrad(model, x, targets, samples, sigma, internal_batch):
    """SmoothGrad: the mean input gradient over `samples` noisy copies (noise std = sigma × range).

    As Captum's NoiseTunnel (and Lantern's method) the noise is drawn per sample; torch's own
    generator draws it, so the two sides' results differ and only times are compared.
    """
    out = []
    gen = torch.Generator().manual_seed(0)
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        sd = sigma * float(xi.max() - xi.min())
        total = torch.zeros_like(xi)
        for start in range(0, samples, internal_batch):
            k = min(internal_batch, samples - start)
            noisy = xi + sd * torch.randn((k,) + tuple(xi.shape[1:]), generator=gen)
            total += input_grad(model, noisy, [targets[i]] * k).sum(0, keepdim=True)
        out.append(total / samples)
    return torch.cat(out)


def occlusion(model, x, targets, window, stride, internal_batch):
    """Captum's Occlusion with a (C, window, window) zero window: the mean, over the windows that
    cover a pixel, of f_t(x) - f_t(x occluded); the last window may overhang the edge."""
    n, c, h, w = x.shape
    rows = math.ceil((h - window) / stride) + 1
    cols = math.ceil((w - window) / stride) + 1
    boxes = [(r * stride, q * stride, min(r * stride + window, h), min(q * stride + window, w))
             for r in range(rows) for q in range(cols)]
    out = []
    with torch.inference_mode():
        base = model(x)
        for i in range(n):
            t = targets[i]
            total = torch.zeros(h, w, dtype=torch.float64)
            count = torch.zeros(h, w, dtype=torch.float64)
            for start in range(0, len(boxes), internal_batch):
                chunk = boxes[start:start + internal_batch]
                b = x[i:i + 1].repeat(len(chunk), 1, 1, 1)
                for j, (y0, x0, y1, x1) in enumerate(chunk):
                    b[j, :, y0:y1, x0:x1] = 0
                diff = (base[i, t] - model(b)[:, t]).double()
                for j, (y0, x0, y1, x1) in enumerate(chunk):
                    total[y0:y1, x0:x1] += diff[j]
                    count[y0:y1, x0:x1] += 1
            out.append((total / count).float().expand(c, h, w))
    return torch.stack(out)


# Lucid's `color_correlation_svd_sqrt`, normalized by its largest column norm
# (kernels/fourier_image.ts).
COLOR_CORRELATION = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32)
COLOR_CORRELATION /= np.max(np.linalg.norm(COLOR_CORRELATION, axis=0))
# Lucid's standard_transforms, as kernels/transforms.ts STANDARD_TRANSFORMS.
TRANSFORM_SCALES = [1 + (i - 5) / 50 for i in range(11)]
TRANSFORM_ANGLES = list(range(-10, 11)) + [0] * 5


def layer_610(model):
    """MobileNetV2 up to ONNX tensor "610": the 16th ReLU6 (features[8]'s depthwise block).

    "610" is the output of the 16th Clip node of the ONNX graph in node order; torchvision's
    ReLU6 modules come in the same order (features[0]: 1, features[1]: 1, then 2 per block).
    """
    block = model.features[8].conv
    return torch.nn.Sequential(*model.features[:8], block[0], block[1]).eval()


def random_affine_grid(rng, h, w):
    """One standard transform as a grid_sample grid (align_corners=True), as randomAffine."""
    def offset(d):
        return int(np.floor(rng.uniform() * (d + 1))) - d / 2

    j1x, j1y = offset(8), offset(8)
    s = TRANSFORM_SCALES[int(rng.uniform() * len(TRANSFORM_SCALES))]
    theta = TRANSFORM_ANGLES[int(rng.uniform() * len(TRANSFORM_ANGLES))] * np.pi / 180
    j2x, j2y = offset(4), offset(4)
    cos, sin = np.cos(theta) / s, np.sin(theta) / s
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ux, uy = -cx + j2x, -cy + j2y
    tx, ty = cx + j1x + cos * ux + sin * uy, cy + j1y - sin * ux + cos * uy
    oy, ox = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    sx, sy = cos * ox + sin * oy + tx, -sin * ox + cos * oy + ty
    # Source pixel -> [-1, 1] with align_corners=True.
    return torch.stack([2 * sx / (w - 1) - 1, 2 * sy / (h - 1) - 1], dim=-1)[None]


def activation_max_steps(net, steps, seed, h=224, w=224, lr=0.05):
    """Lucid's render_vis loop for the mean of channel 0 of `net`'s output; returns seconds.

    Fourier image (1/f scaling, decay power 1, irfft2, /4), decorrelated colour, sigmoid,
    standard transforms as one random affine grid_sample (fill 0.5), ImageNet normalization,
    loss = -mean of channel 0, Adam.
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[:w // 2 + 1]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = torch.tensor(np.sqrt(h * w) / np.maximum(freqs, 1.0 / max(h, w)),
                         dtype=torch.float32)
    spectrum = (0.01 * torch.randn(3, h, w // 2 + 1, 2, generator=gen)).requires_grad_(True)
    color = torch.from_numpy(COLOR_CORRELATION)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    opt = torch.optim.Adam([spectrum], lr=lr)
    t0 = time.perf_counter()
    for _ in range(steps):
        spec = torch.view_as_complex(spectrum) * scale
        img = torch.fft.irfft2(spec, s=(h, w))[None] / 4
        img = torch.einsum("ij,njhw->nihw", color, img)
        rgb = torch.sigmoid(img)
        grid = random_affine_grid(rng, h, w)
        seen = torch.nn.functional.grid_sample(
            rgb - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=True) + 0.5
        loss = -net((seen - mean) / std)[:, 0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def lime_segments(x):
    """LIME's default segmentation of the normalized [1,3,H,W] input: quickshift(4, 200, 0.2)."""
    from skimage.segmentation import quickshift

    img = (x[0].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN).clip(0, 1)
    return quickshift(img.astype(np.float64), kernel_size=4, max_dist=200, ratio=0.2,
                      random_seed=0)


def lime_forwards(model, x, labels, target, samples, internal_batch):
    """LIME's `samples` forward passes with mean-filled superpixels; returns the probabilities."""
    d = int(labels.max()) + 1
    lab = torch.from_numpy(labels.astype(np.int64))
    flat = x[0].reshape(3, -1)
    count = torch.bincount(lab.view(-1), minlength=d).float()
    means = torch.stack([torch.bincount(lab.view(-1), weights=flat[c], minlength=d) / count
                         for c in range(3)])
    off = means[:, lab][None]
    z = np.random.RandomState(0).randint(0, 2, (samples, d))
    z[0] = 1
    z = torch.from_numpy(z).bool()
    probs = []
    with torch.inference_mode():
        for start in range(0, samples, internal_batch):
            mask = z[start:start + internal_batch][:, lab][:, None]
            batch = torch.where(mask, x, off)
            probs.append(torch.softmax(model(batch), dim=1)[:, target])
    return torch.cat(probs)


class Worker:
    """State of one `serve` session: loaded models and their inputs."""

    def __init__(self):
        self.models = {}
        self.net_610 = None
        self.segments = {}

    def load(self, req):
        name = req["model"]
        model, layer = load_model(name, req["onnx"])
        x = photo_batch()
        np.save(req["input"], x.numpy())
        with torch.inference_mode():
            targets = model(x).argmax(dim=1).tolist()
        # Steady state before any case: the first backward at batch 16 frees activation buffers
        # big enough to raise glibc's dynamic mmap threshold, after which such buffers come from
        # the heap instead of fresh zero-filled pages. Without this, MobileNetV2's forward at
        # batch 16 took 330 ms in the first cases and 150-240 ms after the first backward.
        input_grad(model, x, targets)
        self.models[name] = (model, layer, x)
        return {"targets": targets}

    def run(self, req):
        model, layer, x_all = self.models[req["model"]]
        x = x_all[:req["batch"]].contiguous()
        targets = req.get("target")
        case = req["case"]
        t0 = time.perf_counter()
        if case == "forward":
            with torch.inference_mode():
                result = model(x)
        elif case == "grad":
            result = input_grad(model, x, targets)
        elif case == "gradcam":
            result = gradcam(model, layer, x, targets)
        elif case == "ig":
            result = integrated_gradients(model, x, targets, req["steps"], req["internal_batch"])
        elif case == "smoothgrad":
            result = smoothgrad(model, x, targets, req["samples"], req["sigma"],
                                req["internal_batch"])
        elif case == "occlusion":
            result = occlusion(model, x, targets, req["window"], req["stride"],
                               req["internal_batch"])
        else:
            raise ValueError(f'Cannot run case "{case}": expected forward, grad, gradcam, ig, '
                             'smoothgrad or occlusion')
        ms = (time.perf_counter() - t0) * 1000
        reply = {"ms": ms}
        if req.get("save"):
            np.save(req["save"], result.detach().numpy().astype(np.float32))
        return reply

    def actmax(self, req):
        if self.net_610 is None:
            model = self.models["mobilenet_v2"][0]
            self.net_610 = layer_610(model)
            for p in self.net_610.parameters():
                p.requires_grad_(False)
        seconds = activation_max_steps(self.net_610, req["steps"], req.get("seed", 0))
        return {"ms": seconds * 1000, "steps_per_second": req["steps"] / seconds}

    def lime(self, req):
        model = self.models["mobilenet_v2"][0]
        path = req["input"]
        x = torch.from_numpy(np.load(path)).float()
        if path not in self.segments:
            t0 = time.perf_counter()
            labels = lime_segments(x)
            self.segments[path] = (labels, time.perf_counter() - t0)
        # The segmentation is the same every time: it is timed once and that time reported.
        labels, segmentation = self.segments[path]
        t0 = time.perf_counter()
        probs = lime_forwards(model, x, labels, req["target"], req["samples"],
                              req["internal_batch"])
        forward = time.perf_counter() - t0
        return {"ms": forward * 1000, "segmentation_ms": segmentation * 1000,
                "segments": int(labels.max()) + 1, "first_probability": float(probs[0])}


def sgemm_gflops(n, threads, reps=7):
    """GFLOP/s of torch.mm on two random n×n float32 matrices with `threads` threads (median)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / sorted(times)[reps // 2] / 1e9


def serve(threads):
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    worker = Worker()
    out = sys.stdout
    hello = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
    }
    out.write(json.dumps(hello) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            if req["op"] == "quit":
                break
            # Any request may ask for the peak RSS of its own run.
            memory = bool(req.get("memory"))
            reset = reset_peak_rss() if memory else False
            if req["op"] == "load":
                reply = worker.load(req)
            elif req["op"] == "run":
                reply = worker.run(req)
            elif req["op"] == "actmax":
                reply = worker.actmax(req)
            elif req["op"] == "lime":
                reply = worker.lime(req)
            elif req["op"] == "gemm":
                reply = {"gflops": [sgemm_gflops(req["n"], t) for t in req["threads"]]}
                torch.set_num_threads(threads)
            else:
                raise ValueError(f'Cannot serve request: unknown op "{req["op"]}"')
            if memory:
                reply["peak_rss"] = peak_rss_bytes()
                reply["peak_rss_reset"] = reset
        except Exception as e:  # reported to the Deno side, which stops the bench
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="export the seed-0 ResNet-50 to ONNX")
    exp.add_argument("path")
    srv = sub.add_parser("serve", help="answer timing requests on stdin/stdout")
    srv.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    if args.command == "export":
        export_resnet50(args.path)
    else:
        serve(args.threads)


if __name__ == "__main__":
    main()
