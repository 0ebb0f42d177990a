"""Reference segmentations and a weighted ridge fixture for tests/lime_test.ts.

Run with Debian's python (scikit-image 0.19, numpy, PIL):

    /usr/bin/python3 tools/make_segmentation_fixtures.py

Writes tests/fixtures/segmentation/:
  <name>.png              the photo resized to 224x224 (PIL bilinear), RGB
  <name>.quickshift.png   16-bit labels of quickshift(img/255, kernel_size=4, max_dist=200,
                          ratio=0.2, random_seed=0), LIME's defaults and call
  <name>.slic.png         16-bit labels of slic(img/255) with scikit-image's defaults
  rise_{cells,shifts,masks}.npy  RISE masks of the authors' generate_masks (skimage resize,
                          order 1, mode reflect, no antialiasing, random crop) for given grids
  ridge_{x,y,w,coef}.npy  a weighted ridge problem and its closed-form solution (numpy lstsq on
                          the sqrt(w)-weighted design augmented with sqrt(alpha)*I, intercept
                          unpenalised after weighted centring, as sklearn's Ridge does)
"""
import os

import numpy as np
from PIL import Image
from skimage.segmentation import quickshift, slic

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "segmentation")
DATA = "/usr/lib/python3/dist-packages/skimage/data"


def save_labels(path, labels):
    assert labels.min() >= 0 and labels.max() < 65536
    Image.fromarray(labels.astype(np.uint16)).save(path)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in ["chelsea", "coffee"]:
        img = Image.open(os.path.join(DATA, name + ".png")).convert("RGB").resize(
            (224, 224), Image.BILINEAR)
        img.save(os.path.join(OUT, name + ".png"))
        arr = np.asarray(img).astype(np.float64) / 255
        qs = quickshift(arr, kernel_size=4, max_dist=200, ratio=0.2, random_seed=0)
        sl = slic(arr, start_label=0)
        save_labels(os.path.join(OUT, name + ".quickshift.png"), qs)
        save_labels(os.path.join(OUT, name + ".slic.png"), sl)
        print(name, "quickshift", qs.max() + 1, "slic", sl.max() + 1)

    rng = np.random.RandomState(0)
    n, d, alpha = 60, 8, 1.0
    x = (rng.rand(n, d) > 0.5).astype(np.float64)
    y = x @ rng.randn(d) + 0.3 + 0.1 * rng.randn(n)
    w = rng.rand(n)
    sw = np.sqrt(w)
    xm = (w @ x) / w.sum()
    ym = (w @ y) / w.sum()
    a = np.vstack([(x - xm) * sw[:, None], np.sqrt(alpha) * np.eye(d)])
    b = np.concatenate([(y - ym) * sw, np.zeros(d)])
    coef = np.linalg.lstsq(a, b, rcond=None)[0]
    intercept = ym - xm @ coef
    pred = x @ coef + intercept
    r2 = 1 - (w @ (y - pred) ** 2) / (w @ (y - ym) ** 2)
    for key, value in [("x", x), ("y", y), ("w", w),
                       ("coef", np.concatenate([coef, [intercept, r2]]))]:
        np.save(os.path.join(OUT, "ridge_%s.npy" % key), value.astype(np.float64))
    print("ridge r2", r2)

    from skimage.transform import resize
    h, w, s, count = 30, 40, 5, 3
    cell = np.ceil(np.array([h, w]) / s)
    up = ((s + 1) * cell).astype(int)
    cells = (rng.rand(count, s, s) < 0.5).astype(np.float64)
    shifts, masks = [], []
    for i in range(count):
        dy, dx = rng.randint(0, cell[0]), rng.randint(0, cell[1])
        shifts.append([dy, dx])
        masks.append(resize(cells[i], up, order=1, mode="reflect",
                            anti_aliasing=False)[dy:dy + h, dx:dx + w])
    np.save(os.path.join(OUT, "rise_cells.npy"), cells)
    np.save(os.path.join(OUT, "rise_shifts.npy"), np.array(shifts, dtype=np.float64))
    np.save(os.path.join(OUT, "rise_masks.npy"), np.array(masks, dtype=np.float64))


if __name__ == "__main__":
    main()
