"""References for the example method plugins (examples/plugins/) -> tests/fixtures/plugins/.

Built from the torch fixtures of tools/make_torch_fixtures.py (tests/fixtures/torch/), so they are
independent of Lantern:

- gradient x input: the torch (float64 autograd) input gradient times the input;
- Eigen-CAM: pytorch-grad-cam's get_2d_projection (reproduced below from jacobgil/pytorch-grad-cam,
  utils/svd_on_activations.py) on the torch activations of a mid layer, with the sign of the first
  singular vector oriented towards the channel-mean activation (LAPACK picks it arbitrarily) and
  BaseCAM's ReLU.

Run: /usr/bin/python3 tools/make_plugin_fixtures.py
"""
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH = os.path.join(ROOT, "tests", "fixtures", "torch")
OUT = os.path.join(ROOT, "tests", "fixtures", "plugins")
MODELS = ["resnet_basic", "mobilenet_v2"]


def get_2d_projection(activation_batch):
    """pytorch-grad-cam's get_2d_projection, plus a deterministic sign."""
    activation_batch = activation_batch.astype(np.float64)
    activation_batch[np.isnan(activation_batch)] = 0
    projections, gaps = [], []
    for activations in activation_batch:
        reshaped = activations.reshape(activations.shape[0], -1).transpose()
        reshaped = reshaped - reshaped.mean(axis=0)
        _, s, vt = np.linalg.svd(reshaped, full_matrices=True)
        projection = reshaped @ vt[0, :]
        if projection @ activations.reshape(activations.shape[0], -1).mean(axis=0) < 0:
            projection = -projection
        projections.append(projection.reshape(activations.shape[1:]))
        gaps.append(float(s[1] / s[0]))
    return np.array(projections), gaps


def main():
    manifest = json.load(open(os.path.join(TORCH, "manifest.json")))
    by_name = {m["name"]: m for m in manifest["models"]}
    index = {"generator": "tools/make_plugin_fixtures.py", "models": []}
    os.makedirs(OUT, exist_ok=True)
    for name in MODELS:
        m = by_name[name]
        x = np.load(os.path.join(TORCH, m["arrays"]["input"])).astype(np.float64)
        grad = np.load(os.path.join(TORCH, m["arrays"]["input_gradient"])).astype(np.float64)
        gxi = (x * grad).astype(np.float32)
        np.save(os.path.join(OUT, f"{name}_gradient_x_input.npy"), gxi)
        layer = m["layers"]["mid"]
        acts = np.load(os.path.join(TORCH, layer["activation"]))
        proj, gaps = get_2d_projection(acts)
        cam = np.maximum(proj, 0)[:, None].astype(np.float32)
        np.save(os.path.join(OUT, f"{name}_eigen_cam.npy"), cam)
        np.save(os.path.join(OUT, f"{name}_eigen_cam_norelu.npy"), proj[:, None].astype(np.float32))
        index["models"].append({
            "name": name,
            "onnx": f"../torch/{m['onnx']}",
            "input": f"../torch/{m['arrays']['input']}",
            "targets": m["targets"],
            "eigen_cam_layer": layer["onnx_name"],
            "singular_value_ratio_s2_s1": [round(g, 4) for g in gaps],
            "gradient_x_input": f"{name}_gradient_x_input.npy",
            "eigen_cam": f"{name}_eigen_cam.npy",
            "eigen_cam_norelu": f"{name}_eigen_cam_norelu.npy",
        })
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
