#!/usr/bin/python3
"""Make the reference fixtures of the image decoders and the `image` preprocess plugin.

Run with Debian's Python (it has PIL 9.4 and torchvision 0.14), from the repository root:

    /usr/bin/python3 tools/make_image_fixtures.py

The JPEG cases PIL cannot write (4:4:0 and 4:1:1 sampling, restart markers, RGB JPEG) are made
with `cjpeg` and checked with `djpeg` from libjpeg-turbo-progs, the same libjpeg-turbo 2.1.5 that
PIL links (`apt-get install libjpeg-turbo-progs`).

References come from PIL and torchvision themselves, never from Lantern code. It writes, under
tests/fixtures/images/:

* Synthetic inputs: `rgba_300x199.png` (odd size, varying alpha), `rgb16_97x131.png` (16-bit,
  smaller than 256 so the resize upsamples), `palette_257x190.png` (8-bit palette with tRNS),
  `progressive_333x250.jpg` (progressive 4:2:0), `sub422_161x121.jpg`, `sub444_97x83.jpg` and
  `gray_100x75.jpg`, plus small PNGs in every PNG colour type and bit depth (`png_*.png`; those
  PIL cannot write are written by the small encoder below, which also varies the row filters
  and can interlace).
* `<name>.crop.npy`: uint8 [224,224,3], the result of
  `CenterCrop(224)(Resize(256)(Image.open(path).convert("RGB")))`. The script asserts that
  `ToTensor()` of that crop is exactly the crop divided by 255, so the uint8 crop stands for
  the tensor before normalization.
* `<name>.pil.png`: PIL's own decode of each JPEG (libjpeg-turbo), stored losslessly, so the
  tests can measure the JPEG decoder apart from the resize.
* `jpeg_*.jpg`: one small JPEG per decoder path, each with its `.pil.png`: 4:2:0, 4:4:0, 4:1:1
  and mixed sampling; restart intervals (sequential and progressive); progressive grey; RGB,
  CMYK and YCCK colour; images 2 and 3 chroma samples wide, where libjpeg stops filtering; and
  `jpeg_quant16_64x40.jpg`, with 16-bit quantization tables so large that the coefficients
  leave the range of real images (there libjpeg-turbo's C and SIMD inverse DCTs differ; PIL
  runs the SIMD one, and the script asserts the two differ on that file).
* `<name>.rgba.npy`: uint8 [H,W,4], `Image.open(path).convert("RGBA")` for the small PNGs
  (16-bit grey: see the note in `png_cases`).
* `chelsea.gray.npy`: uint8 [224,224], `Image.open(...).convert("L").resize((224, 224),
  BILINEAR)`, the grayscale preset's reference.
* `chelsea.norm.npy`: float32 [3,32,32], every 7th row and column of
  `Normalize(mean, std)(ToTensor()(crop))` with the ImageNet mean and std.
* `resize_src.png`, `resize_cases.npy` and `resize_cases.json`: PIL bilinear resizes of one
  small RGB image and its "L" conversion to many sizes (up, down, one axis only, 1 pixel);
  the .npy is all results flattened end to end, the JSON lists `[mode, width, height, offset]`.
"""
import io
import json
import os
import struct
import subprocess
import tempfile
import zlib

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "images")
EXAMPLES = os.path.join(ROOT, "examples", "images")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def out(name):
    return os.path.join(OUT, name)


def save_npy(name, array):
    np.save(out(name), np.ascontiguousarray(array), allow_pickle=False)


# --- a small PNG encoder, for the colour types and depths PIL cannot write -------------------


def _filter_row(kind, row, prev, bpp):
    """PNG filter `kind` (0-4) of one row of bytes (uint8 arrays), as the spec defines it."""
    row = row.astype(np.int32)
    prev = prev.astype(np.int32)
    left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
    upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
    if kind == 0:
        f = row
    elif kind == 1:
        f = row - left
    elif kind == 2:
        f = row - prev
    elif kind == 3:
        f = row - (left + prev) // 2
    else:
        p = left + prev - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
        pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        f = row - pred
    return (f & 0xFF).astype(np.uint8)


def _pack_rows(samples, depth):
    """Rows of samples [h, w*channels] as PNG bytes: big-endian 16-bit, or packed sub-byte."""
    h = samples.shape[0]
    if depth == 16:
        return samples.astype(">u2").view(np.uint8).reshape(h, -1)
    if depth == 8:
        return samples.astype(np.uint8)
    per = 8 // depth
    w = samples.shape[1]
    padded = np.zeros((h, -(-w // per) * per), np.uint8)
    padded[:, :w] = samples
    padded = padded.reshape(h, -1, per)
    packed = np.zeros(padded.shape[:2], np.uint8)
    for i in range(per):
        packed |= (padded[:, :, i] << (8 - depth * (i + 1))).astype(np.uint8)
    return packed


def _scanlines(samples, depth, channels):
    """Filtered scanlines of one (sub)image, cycling the five filter types row by row."""
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        return b""
    rows = _pack_rows(samples.reshape(samples.shape[0], -1), depth)
    bpp = max(1, depth * channels // 8)
    prev = np.zeros(rows.shape[1], np.uint8)
    data = bytearray()
    for y, row in enumerate(rows):
        kind = y % 5
        data.append(kind)
        data += _filter_row(kind, row, prev, bpp).tobytes()
        prev = row
    return bytes(data)


def write_png(path, samples, depth, color_type, palette=None, trns=None, interlace=False):
    """Write samples [h, w, channels] as a PNG of `color_type` and bit `depth`."""
    h, w, channels = samples.shape
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                  (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b"".join(
            _scanlines(samples[y0::dy, x0::dx], depth, channels) for x0, y0, dx, dy in passes)
    else:
        raw = _scanlines(samples, depth, channels)

    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    if palette is not None:
        png += chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).ravel()))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    png += chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


# --- synthetic pictures ----------------------------------------------------------------------


def pattern(w, h, seed):
    """An RGB float picture in [0, 1] with gradients, hard edges, fine stripes and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = x / max(w - 1, 1)
    g = y / max(h - 1, 1)
    b = 0.5 + 0.5 * np.sin(x / 3.1) * np.cos(y / 4.7)
    img = np.stack([r, g, b], -1)
    check = ((x // 9 + y // 7) % 2 == 0) & (x < w // 2) & (y > h // 2)
    img[check] = [0.95, 0.1, 0.2]
    circle = (x - w * 0.7) ** 2 + (y - h * 0.3) ** 2 < (min(w, h) * 0.2) ** 2
    img[circle] = [0.05, 0.9, 0.3]
    img[(x.astype(int) % 2 == 0) & (y > h * 0.8)] = 1.0
    noisy = (x > w * 0.55) & (y > h * 0.6)
    img[noisy] = rng.random((int(noisy.sum()), 3))
    return img


def to_u8(img):
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def make_synthetic():
    # Odd size, RGBA with alpha falling from 255 to 0: the pipeline must drop alpha, not blend.
    rgb = to_u8(pattern(300, 199, 1))
    alpha = np.broadcast_to(np.linspace(255, 0, 300).astype(np.uint8), (199, 300))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(out("rgba_300x199.png"))

    # 16-bit RGB with meaningful low bytes; smaller than 256 so the resize upsamples.
    rng = np.random.default_rng(2)
    rgb16 = (pattern(97, 131, 3) * 65535).round()
    rgb16 = np.clip(rgb16 + rng.integers(-300, 300, rgb16.shape), 0, 65535).astype(np.uint16)
    write_png(out("rgb16_97x131.png"), rgb16, 16, 2)

    # Palette image with a transparent entry.
    chelsea = Image.open(os.path.join(EXAMPLES, "chelsea.png")).convert("RGB")
    pal = chelsea.resize((257, 190), Image.LANCZOS).quantize(64, dither=Image.FLOYDSTEINBERG)
    pal.save(out("palette_257x190.png"), transparency=3)

    # JPEGs of a natural photo: progressive 4:2:0 at an odd size, 4:2:2, 4:4:4 and grey.
    coffee = Image.open(os.path.join(EXAMPLES, "coffee.png")).convert("RGB")
    prog = coffee.crop((60, 20, 560, 395)).resize((333, 250), Image.LANCZOS)
    prog.save(out("progressive_333x250.jpg"), quality=90, subsampling=2, progressive=True)
    small = chelsea.crop((120, 20, 442, 262)).resize((161, 121), Image.LANCZOS)
    small.save(out("sub422_161x121.jpg"), quality=85, subsampling=1)
    tiny = chelsea.crop((150, 40, 344, 206)).resize((97, 83), Image.LANCZOS)
    tiny.save(out("sub444_97x83.jpg"), quality=95, subsampling=0)
    coffee.convert("L").resize((100, 75), Image.LANCZOS).save(out("gray_100x75.jpg"), quality=80)


def _jpeg_segments(data):
    """The marker segments of a JPEG up to its first scan, as (marker, bytes), then the rest."""
    i, segments = 2, []
    while True:
        marker = data[i + 1]
        if marker == 0xDA:
            return segments, data[i:]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        segments.append((marker, data[i:i + 2 + length]))
        i += 2 + length


def _with_quant16(data, seed):
    """The JPEG with each quantization table replaced by random 16-bit values."""
    rng = np.random.default_rng(seed)
    segments, rest = _jpeg_segments(data)
    result = data[:2]
    for marker, segment in segments:
        if marker == 0xDB:
            body, p, tables = segment[4:], 0, b""
            while p < len(body):
                table_id = body[p] & 15
                values = rng.integers(1, 65536, 64)
                tables += bytes([0x10 | table_id]) + b"".join(struct.pack(">H", v) for v in values)
                p += 1 + (128 if body[p] >> 4 else 64)
            segment = b"\xff\xdb" + struct.pack(">H", len(tables) + 2) + tables
        result += segment
    return result + rest


def _with_adobe_transform(data, transform):
    """The JPEG with its Adobe APP14 colour-transform byte set to `transform`."""
    segments, _ = _jpeg_segments(data)
    at = 2
    for marker, segment in segments:
        if marker == 0xEE and segment[4:9] == b"Adobe":
            patched = bytearray(data)
            patched[at + 4 + 11] = transform
            return bytes(patched)
        at += len(segment)
    raise ValueError("no Adobe APP14 segment")


def make_jpeg_cases():
    """Small JPEGs, one per decoder path, each with PIL's decode as `<name>.pil.png`."""
    chelsea = Image.open(os.path.join(EXAMPLES, "chelsea.png")).convert("RGB")
    coffee = Image.open(os.path.join(EXAMPLES, "coffee.png")).convert("RGB")
    names = []

    def pil(name, im, **options):
        im.save(out(name + ".jpg"), **options)
        names.append(name)

    def cjpeg(name, im, *args):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "in.ppm")
            im.save(src)
            subprocess.run(["cjpeg", *args, "-outfile", out(name + ".jpg"), src], check=True)
        names.append(name)

    def crafted(name, data):
        with open(out(name + ".jpg"), "wb") as f:
            f.write(data)
        names.append(name)

    cat = chelsea.crop((150, 30, 350, 200))
    pil("jpeg_420_75x53", cat.resize((75, 53), Image.LANCZOS), quality=75, subsampling=2)
    cjpeg("jpeg_440_67x49", cat.resize((67, 49), Image.LANCZOS), "-quality", "85", "-sample",
          "1x2")
    cjpeg("jpeg_411_90x34", coffee.resize((90, 34), Image.LANCZOS), "-quality", "80", "-sample",
          "4x1")
    # Cb at half width and height, Cr at half width only: h2v2 and h2v1 filters in one file.
    cjpeg("jpeg_mixed_59x43", cat.resize((59, 43), Image.LANCZOS), "-sample", "2x2,1x1,1x2")
    # Every 3 MCUs, so intervals end mid-row.
    cjpeg("jpeg_restart_83x61", coffee.resize((83, 61), Image.LANCZOS), "-sample", "2x2",
          "-restart", "3B")
    cjpeg("jpeg_progressive_restart_71x45", cat.resize((71, 45), Image.LANCZOS), "-sample",
          "2x1", "-progressive", "-restart", "1")
    pil("jpeg_gray_progressive_50x38", coffee.convert("L").resize((50, 38), Image.LANCZOS),
        quality=70, progressive=True)
    cjpeg("jpeg_rgb_45x29", Image.fromarray(to_u8(pattern(45, 29, 21))), "-rgb")
    cmyk = cat.resize((61, 37), Image.LANCZOS).convert("CMYK")
    pil("jpeg_cmyk_61x37", cmyk, quality=90)
    # The same entropy-coded data, declared YCCK: libjpeg converts it to CMYK first.
    with open(out("jpeg_cmyk_61x37.jpg"), "rb") as f:
        crafted("jpeg_ycck_61x37", _with_adobe_transform(f.read(), 2))
    # Chroma rows 2, 3 and 2 samples wide: libjpeg filters only rows of 3 or more.
    for (w, h), sampling in (((3, 3), 2), ((5, 2), 1), ((4, 5), 1)):
        tiny = Image.fromarray(to_u8(pattern(w, h, w * 10 + h)))
        pil(f"jpeg_tiny_{w}x{h}_{'420' if sampling == 2 else '422'}", tiny, quality=90,
            subsampling=sampling)
    # 4:4:0 is filtered vertically whatever the width.
    cjpeg("jpeg_tiny_2x5_440", Image.fromarray(to_u8(pattern(2, 5, 25))), "-sample", "1x2")
    noise = Image.fromarray(np.random.default_rng(23).integers(0, 256, (40, 64, 3), np.uint8))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=50, subsampling=2)
    crafted("jpeg_quant16_64x40", _with_quant16(buffer.getvalue(), 24))

    for name in names:
        Image.open(out(name + ".jpg")).convert("RGB").save(out(name + ".pil.png"), optimize=True)
    # libjpeg-turbo's C inverse DCT wraps out-of-range values where its SIMD code saturates.
    pil_pixels = np.asarray(Image.open(out("jpeg_quant16_64x40.jpg")).convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        ppm = os.path.join(tmp, "c.ppm")
        env = dict(os.environ, JSIMD_FORCENONE="1")
        subprocess.run(["djpeg", "-outfile", ppm, out("jpeg_quant16_64x40.jpg")], env=env,
                       check=True)
        c_pixels = np.asarray(Image.open(ppm).convert("RGB"))
    assert (c_pixels != pil_pixels).any(), "jpeg_quant16 does not tell the C and SIMD IDCTs apart"
    print(f"{len(names)} JPEG cases")


def png_cases():
    """Small PNGs in every colour type and depth, each with PIL's RGBA reading as reference.

    16-bit samples: PIL keeps the high byte for RGB, RGBA and grey+alpha (asserted below), and
    Lantern does the same for every 16-bit type. For 16-bit grey PIL makes mode "I" and its
    RGB conversion clips at 255 instead of scaling, so that reference is the high byte,
    computed here with numpy, not PIL.
    """
    rng = np.random.default_rng(7)
    w, h = 37, 23
    base = to_u8(pattern(w, h, 8))
    gray = base[..., 1]
    alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
    lo = rng.integers(0, 256, (h, w, 4))

    def wide(a, k):
        return (a.astype(np.uint16) << 8) | lo[..., :k].reshape(a.shape).astype(np.uint16)

    cases = {
        "gray8": (gray[..., None], 8, 0, {}),
        "gray1": ((gray[..., None] > 127).astype(np.uint8), 1, 0, {}),
        "gray2": ((gray[..., None] >> 6), 2, 0, {}),
        "gray4": ((gray[..., None] >> 4), 4, 0, {}),
        "gray16": (wide(gray[..., None], 1), 16, 0, {}),
        "gray8_trns": (gray[..., None], 8, 0, {"trns": struct.pack(">H", int(gray[0, 0]))}),
        "graya8": (np.dstack([gray, alpha]), 8, 4, {}),
        "graya16": (wide(np.dstack([gray, alpha]), 2), 16, 4, {}),
        "rgb8": (base, 8, 2, {}),
        "rgb8_adam7": (base, 8, 2, {"interlace": True}),
        "rgb16": (wide(base, 3), 16, 2, {}),
        "rgb16_adam7": (wide(base, 3), 16, 2, {"interlace": True}),
        "rgba8": (np.dstack([base, alpha]), 8, 6, {}),
        "rgba16": (wide(np.dstack([base, alpha]), 4), 16, 6, {}),
    }
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    for depth in (1, 2, 4, 8):
        n = 1 << depth
        idx = (gray[..., None].astype(np.int32) * n // 256).astype(np.uint8)
        trns = bytes(rng.integers(0, 256, min(n, 5), dtype=np.uint8))
        cases[f"pal{depth}"] = (idx, depth, 3, {"palette": palette[:n], "trns": trns})

    for name, (samples, depth, color_type, extra) in cases.items():
        path = out(f"png_{name}.png")
        write_png(path, samples, depth, color_type, **extra)
        im = Image.open(path)
        if name == "gray16":
            g = (samples[..., 0] >> 8).astype(np.uint8)
            ref = np.dstack([g, g, g, np.full_like(g, 255)])
        else:
            ref = np.asarray(im.convert("RGBA"))
        if depth == 16 and name != "gray16":
            high = (samples >> 8).astype(np.uint8)
            rgb = np.repeat(high[..., :1], 3, -1) if color_type == 4 else high[..., :3]
            assert (ref[..., :3] == rgb).all(), f"PIL does not keep the high byte for {name}"
        save_npy(f"png_{name}.rgba.npy", ref)
    print(f"{len(cases)} small PNG cases")


# --- references ------------------------------------------------------------------------------

TO_TENSOR = transforms.ToTensor()
PIPELINE = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])


def crop_reference(path, name):
    img = Image.open(path).convert("RGB")
    crop = PIPELINE(img)
    arr = np.array(crop)
    tensor = TO_TENSOR(crop)
    assert torch.equal(tensor, torch.from_numpy(arr).permute(2, 0, 1).float() / 255)
    save_npy(f"{name}.crop.npy", arr)
    if path.endswith(".jpg"):
        img.save(out(f"{name}.pil.png"), optimize=True)
    return crop


def make_references():
    inputs = {
        "chelsea": os.path.join(EXAMPLES, "chelsea.png"),
        "coffee": os.path.join(EXAMPLES, "coffee.png"),
        "grace_hopper": os.path.join(EXAMPLES, "grace_hopper.jpg"),
        "rgba_300x199": out("rgba_300x199.png"),
        "rgb16_97x131": out("rgb16_97x131.png"),
        "palette_257x190": out("palette_257x190.png"),
        "progressive_333x250": out("progressive_333x250.jpg"),
    }
    crops = {name: crop_reference(path, name) for name, path in inputs.items()}
    for name in ("sub422_161x121", "sub444_97x83", "gray_100x75"):
        Image.open(out(f"{name}.jpg")).convert("RGB").save(out(f"{name}.pil.png"), optimize=True)

    chelsea = Image.open(inputs["chelsea"])
    gray = chelsea.convert("L").resize((224, 224), Image.BILINEAR)
    save_npy("chelsea.gray.npy", np.asarray(gray))

    norm = transforms.Normalize(MEAN, STD)(TO_TENSOR(crops["chelsea"]))
    save_npy("chelsea.norm.npy", norm[:, ::7, ::7].numpy().astype(np.float32))


def make_resize_cases():
    src = Image.fromarray(to_u8(pattern(67, 45, 11)))
    src.save(out("resize_src.png"))
    sizes = [(1, 1), (2, 3), (13, 9), (33, 22), (34, 23), (66, 44), (67, 30), (40, 45),
             (67, 45), (68, 46), (100, 71), (201, 135), (5, 45), (67, 1), (29, 97)]
    flat, table, offset = [], [], 0
    for mode in ("RGB", "L"):
        im = src.convert(mode)
        for w, h in sizes:
            arr = np.asarray(im.resize((w, h), Image.BILINEAR)).ravel()
            flat.append(arr)
            table.append([mode, w, h, offset])
            offset += arr.size
    save_npy("resize_cases.npy", np.concatenate(flat))
    with open(out("resize_cases.json"), "w") as f:
        json.dump(table, f)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    make_synthetic()
    make_jpeg_cases()
    png_cases()
    make_references()
    make_resize_cases()
    total = sum(os.path.getsize(out(f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB, to {OUT}")


if __name__ == "__main__":
    main()
