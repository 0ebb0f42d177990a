/**
 * Image decoding, PIL-exact resizing and the `image` / `npy` preprocess plugins, against PIL 9.4
 * and torchvision 0.14 references made by `tools/make_image_fixtures.py`.
 *
 * Each check prints the largest difference it measured, in uint8 levels (1 level = 1/255).
 */
import assert from "node:assert/strict";
import { decodeImage, readImageHeader, sniffFormat } from "../kernels/image_decode.ts";
import {
  centerCrop,
  type GrayImage,
  imagesToTensor,
  resizeBilinear,
  shortSideSize,
  toGray,
} from "../kernels/resize.ts";
import { decodeNpy, encodeNpy } from "../kernels/npy.ts";
import { tensor } from "../kernels/tensor.ts";
import { fileStem, imagePreprocess, uniqueNames } from "../plugins/preprocess/image.ts";
import { npyPreprocess } from "../plugins/preprocess/npy.ts";
import type { Batch, Model, RgbaImage } from "../pipeline/types.ts";

const FIXTURES = new URL("./fixtures/images/", import.meta.url);
const EXAMPLES = new URL("../examples/images/", import.meta.url);

function fixture(name: string): Promise<Uint8Array> {
  return Deno.readFile(new URL(name, FIXTURES));
}

/** A uint8 `.npy` (kernels/npy.ts reads float arrays only). */
async function u8Npy(name: string): Promise<{ dims: number[]; data: Uint8Array }> {
  const bytes = await fixture(name);
  const headerLen = bytes[8] | (bytes[9] << 8);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLen));
  assert.match(header, /'descr': '\|u1'/, `${name} is not uint8`);
  const dims = /'shape': \(([^)]*)\)/.exec(header)![1].split(",").filter((s) => s.trim())
    .map(Number);
  return { dims, data: bytes.subarray(10 + headerLen) };
}

function decodeFile(bytes: Uint8Array, name: string): RgbaImage {
  return decodeImage(bytes, name);
}

/** Largest and mean |a - b| over the RGB channels of an RGBA image vs HWC uint8 `ref`. */
function rgbDiff(
  image: RgbaImage,
  ref: Uint8Array,
  refChannels = 3,
): { max: number; mean: number } {
  const n = image.width * image.height;
  assert.equal(ref.length, n * refChannels, "reference size differs from the image");
  let max = 0, sum = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(image.data[i * 4 + c] - ref[i * refChannels + c]);
      if (d > max) max = d;
      sum += d;
    }
  }
  return { max, mean: sum / (n * 3) };
}

function fakeModel(inputShape: number[]): Model {
  return { name: "fake.onnx", inputShape } as unknown as Model;
}

function runImage(
  sources: (string | { name: string; bytes: Uint8Array })[],
  params: Record<string, unknown> = {},
  inputShape = [-1, 3, 224, 224],
): Promise<Batch> {
  return imagePreprocess.run(
    { sources, model: fakeModel(inputShape) },
    imagePreprocess.params.parse(params),
  );
}

function report(label: string, d: { max: number; mean: number }): void {
  console.log(`  ${label}: max ${d.max}/255, mean ${d.mean.toFixed(4)}/255`);
}

Deno.test("sniffFormat and readImageHeader read the magic bytes, not the name", async () => {
  const png = await Deno.readFile(new URL("chelsea.png", EXAMPLES));
  const jpg = await Deno.readFile(new URL("grace_hopper.jpg", EXAMPLES));
  assert.equal(sniffFormat(png), "png");
  assert.equal(sniffFormat(jpg), "jpeg");
  assert.deepEqual(readImageHeader(png, "a.jpg"), { format: "png", width: 451, height: 300 });
  assert.deepEqual(readImageHeader(jpg, "b.png"), { format: "jpeg", width: 512, height: 600 });
  assert.equal(decodeImage(jpg, "misnamed.png").width, 512);
});

Deno.test("PNG: every colour type and bit depth decodes as PIL's convert('RGBA')", async () => {
  const names = [
    "gray1",
    "gray2",
    "gray4",
    "gray8",
    "gray16",
    "gray8_trns",
    "graya8",
    "graya16",
    "rgb8",
    "rgb8_adam7",
    "rgb16",
    "rgb16_adam7",
    "rgba8",
    "rgba16",
    "pal1",
    "pal2",
    "pal4",
    "pal8",
  ];
  for (const name of names) {
    const image = decodeFile(await fixture(`png_${name}.png`), `png_${name}.png`);
    const ref = await u8Npy(`png_${name}.rgba.npy`);
    assert.deepEqual([image.height, image.width, 4], ref.dims, name);
    let max = 0;
    for (let i = 0; i < ref.data.length; i++) {
      max = Math.max(max, Math.abs(image.data[i] - ref.data[i]));
    }
    assert.equal(max, 0, `png_${name}.png differs from PIL by up to ${max} levels`);
  }
  console.log(`  ${names.length} PNG variants: max 0/255 (RGBA, bit-exact)`);
});

Deno.test("resizeBilinear is bit-exact with PIL's Image.resize(BILINEAR)", async () => {
  const src = decodeFile(await fixture("resize_src.png"), "resize_src.png");
  const gray = toGray(src);
  const cases: [string, number, number, number][] = JSON.parse(
    await Deno.readTextFile(new URL("resize_cases.json", FIXTURES)),
  );
  const all = await u8Npy("resize_cases.npy");
  let max = 0;
  for (const [mode, width, height, offset] of cases) {
    const size = { width, height };
    if (mode === "RGB") {
      const out = resizeBilinear(src, size);
      const d = rgbDiff(out, all.data.subarray(offset, offset + width * height * 3));
      assert.equal(d.max, 0, `RGB ${width}x${height}: differs by ${d.max}`);
    } else {
      const out = resizeBilinear(gray, size);
      const ref = all.data.subarray(offset, offset + width * height);
      for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(out.data[i] - ref[i]));
      assert.equal(max, 0, `L ${width}x${height}: differs by ${max}`);
    }
  }
  console.log(`  ${cases.length} resizes of 67x45 (RGB and L): max 0/255`);
});

Deno.test("toGray then resize matches PIL convert('L').resize((224, 224))", async () => {
  const chelsea = decodeFile(await Deno.readFile(new URL("chelsea.png", EXAMPLES)), "chelsea");
  const out = resizeBilinear(toGray(chelsea), { width: 224, height: 224 });
  const ref = await u8Npy("chelsea.gray.npy");
  let max = 0;
  for (let i = 0; i < ref.data.length; i++) {
    max = Math.max(max, Math.abs(out.data[i] - ref.data[i]));
  }
  console.log(`  chelsea L 224x224: max ${max}/255`);
  assert.equal(max, 0);
});

Deno.test("centerCrop uses Python's round and torchvision's zero padding", () => {
  // 5 wide → 2 wide: (5-2)/2 = 1.5 rounds to 2; 7 → 2: 2.5 rounds to 2.
  const row = (w: number): GrayImage => ({
    channels: 1,
    width: w,
    height: 1,
    data: Uint8ClampedArray.from({ length: w }, (_, i) => i + 1),
  });
  assert.deepEqual([...centerCrop(row(5), { width: 2, height: 1 }).data], [3, 4]);
  assert.deepEqual([...centerCrop(row(7), { width: 2, height: 1 }).data], [3, 4]);
  // torchvision pads (4-1)//2 = 1 on the left, 2 on the right.
  assert.deepEqual([...centerCrop(row(1), { width: 4, height: 1 }).data], [0, 1, 0, 0]);
  assert.deepEqual(shortSideSize({ width: 451, height: 300 }, 256), { width: 384, height: 256 });
  assert.deepEqual(shortSideSize({ width: 512, height: 600 }, 256), { width: 256, height: 300 });
});

Deno.test("image preset 'imagenet' reproduces torchvision Resize(256)+CenterCrop(224) on PNGs", async () => {
  const inputs: [string, URL][] = [
    ["chelsea", new URL("chelsea.png", EXAMPLES)],
    ["coffee", new URL("coffee.png", EXAMPLES)],
    ["rgba_300x199", new URL("rgba_300x199.png", FIXTURES)],
    ["rgb16_97x131", new URL("rgb16_97x131.png", FIXTURES)],
    ["palette_257x190", new URL("palette_257x190.png", FIXTURES)],
  ];
  const batch = await runImage(inputs.map(([, url]) => url.pathname));
  assert.deepEqual(batch.tensor.dims, [inputs.length, 3, 224, 224]);
  assert.deepEqual(batch.names, inputs.map(([name]) => name));
  for (const [i, [name]] of inputs.entries()) {
    const d = rgbDiff(batch.images![i], (await u8Npy(`${name}.crop.npy`)).data);
    report(name, d);
    assert.ok(d.max <= 1, `${name}: max difference ${d.max}/255 exceeds 1/255`);
  }
});

Deno.test("image tensor equals torchvision Normalize(ToTensor(crop)) in float32", async () => {
  const batch = await runImage([new URL("chelsea.png", EXAMPLES).pathname]);
  const ref = decodeNpy(await fixture("chelsea.norm.npy"), "chelsea.norm.npy");
  assert.deepEqual(ref.dims, [3, 32, 32]);
  let max = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        const got = batch.tensor.data[c * 224 * 224 + y * 7 * 224 + x * 7];
        max = Math.max(max, Math.abs(got - ref.data[c * 1024 + y * 32 + x]));
      }
    }
  }
  console.log(`  chelsea normalized, every 7th pixel: max |diff| ${max}`);
  assert.equal(max, 0);
});

/** Every JPEG fixture, each with PIL's decode stored beside it as `<name>.pil.png`. */
const JPEG_CASES: [string, URL][] = [
  // Baseline 4:2:0, 512x600 (the size the decoding speed is quoted for).
  ["grace_hopper", new URL("grace_hopper.jpg", EXAMPLES)],
  ...[
    "progressive_333x250",
    "sub422_161x121",
    "sub444_97x83",
    "gray_100x75",
    "jpeg_420_75x53",
    "jpeg_440_67x49",
    "jpeg_411_90x34",
    "jpeg_mixed_59x43",
    "jpeg_restart_83x61",
    "jpeg_progressive_restart_71x45",
    "jpeg_gray_progressive_50x38",
    "jpeg_rgb_45x29",
    "jpeg_cmyk_61x37",
    "jpeg_ycck_61x37",
    "jpeg_tiny_3x3_420",
    "jpeg_tiny_5x2_422",
    "jpeg_tiny_4x5_422",
    "jpeg_tiny_2x5_440",
    "jpeg_quant16_64x40",
  ].map((name): [string, URL] => [name, new URL(`${name}.jpg`, FIXTURES)]),
];

async function pilDecode(name: string): Promise<Uint8Array> {
  const pil = decodeFile(await fixture(`${name}.pil.png`), `${name}.pil.png`);
  const rgb = new Uint8Array(pil.width * pil.height * 3);
  for (let i = 0; i < pil.width * pil.height; i++) {
    rgb.set(pil.data.subarray(i * 4, i * 4 + 3), i * 3);
  }
  return rgb;
}

Deno.test("JPEG: decoded pixels equal PIL's (libjpeg-turbo 2.1.5) in every mode", async () => {
  for (const [name, url] of JPEG_CASES) {
    const ours = decodeFile(await Deno.readFile(url), `${name}.jpg`);
    const d = rgbDiff(ours, await pilDecode(name));
    report(`${name} decode vs PIL`, d);
    assert.equal(d.max, 0, `${name}: decode differs from PIL by up to ${d.max}/255`);
  }
});

Deno.test("JPEG: preset 'imagenet' reproduces torchvision on JPEGs exactly", async () => {
  const names = ["grace_hopper", "progressive_333x250"];
  const batch = await runImage(names.map((n) => JPEG_CASES.find(([c]) => c === n)![1].pathname));
  for (const [i, name] of names.entries()) {
    const d = rgbDiff(batch.images![i], (await u8Npy(`${name}.crop.npy`)).data);
    report(`${name} whole pipeline vs torchvision`, d);
    assert.equal(d.max, 0, `${name}: pipeline differs from torchvision by up to ${d.max}/255`);
  }
});

/** The JPEG without its DHT segments (the scan header always comes after them in PIL files). */
function withoutHuffmanTables(jpg: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [jpg.subarray(0, 2)];
  let at = 2;
  while (jpg[at + 1] !== 0xda) {
    const end = at + 2 + ((jpg[at + 2] << 8) | jpg[at + 3]);
    if (jpg[at + 1] !== 0xc4) parts.push(jpg.subarray(at, end));
    at = end;
  }
  parts.push(jpg.subarray(at));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
  return out;
}

Deno.test("JPEG: a file without Huffman tables uses the standard ones, as libjpeg does", async () => {
  // PIL writes the standard tables unless asked to optimize them, so this must change nothing.
  const jpg = await fixture("jpeg_420_75x53.jpg");
  const bare = withoutHuffmanTables(jpg);
  assert.ok(bare.length < jpg.length - 400, "no Huffman tables were removed");
  const a = decodeFile(bare, "bare.jpg").data, b = decodeFile(jpg, "full.jpg").data;
  assert.equal(a.filter((v, i) => v !== b[i]).length, 0);
});

Deno.test("JPEG: unsupported or damaged files fail with one line", async () => {
  const jpg = await fixture("jpeg_420_75x53.jpg");
  const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
  const patched = (at: number, ...values: number[]) => {
    const copy = jpg.slice();
    copy.set(values, at);
    return copy;
  };
  const fails = (bytes: Uint8Array, message: string) =>
    assert.throws(() => decodeImage(bytes, "x.jpg"), {
      message: `Cannot decode "x.jpg": ${message}`,
    });
  fails(patched(sof + 1, 0xc9), "arithmetic-coded sequential JPEG is not supported");
  fails(patched(sof + 1, 0xc3), "lossless JPEG is not supported");
  fails(patched(sof + 4, 12), "12-bit JPEG is not supported");
  fails(patched(sof + 7, 0xff, 0xdd), "65501x53 is over libjpeg's limit of 65500 pixels a side");
  const restart = await fixture("jpeg_restart_83x61.jpg");
  const rst1 = restart.findIndex((b, i) => b === 0xff && restart[i + 1] === 0xd1);
  const badRestart = restart.slice();
  badRestart[rst1 + 1] = 0xd5;
  fails(badRestart, "corrupt JPEG data (expected restart marker RST1, found 0xFFD5)");
  const progressive = await fixture("progressive_333x250.jpg");
  fails(
    progressive.subarray(0, progressive.length >> 1),
    "corrupt JPEG data (truncated: no end-of-image marker)",
  );
});

Deno.test("JPEG: an Adobe APP14 colour-transform flag does not convert YCbCr twice", async () => {
  const jpg = await fixture("sub444_97x83.jpg");
  const app14 = [0xff, 0xee, 0, 14, ...new TextEncoder().encode("Adobe"), 0, 100, 0, 0, 0, 0, 1];
  const flagged = new Uint8Array([...jpg.subarray(0, 2), ...app14, ...jpg.subarray(2)]);
  const a = decodeFile(flagged, "adobe.jpg").data, b = decodeFile(jpg, "plain.jpg").data;
  // Counting, not deepEqual: a failing deepEqual would diff 32,000 bytes for minutes.
  assert.equal(a.filter((v, i) => v !== b[i]).length, 0);
});

Deno.test("image preset 'grayscale' is PIL convert('L') resized straight to the model size", async () => {
  const chelsea = new URL("chelsea.png", EXAMPLES).pathname;
  const batch = await runImage([chelsea], { preset: "grayscale" }, [1, 1, 224, 224]);
  assert.deepEqual(batch.tensor.dims, [1, 1, 224, 224]);
  const ref = await u8Npy("chelsea.gray.npy");
  let max = 0;
  for (let i = 0; i < ref.data.length; i++) {
    max = Math.max(max, Math.abs(batch.tensor.data[i] - ref.data[i] / 255));
    assert.equal(batch.images![0].data[i * 4], ref.data[i]);
  }
  assert.ok(max < 1e-7, `grayscale tensor differs by ${max}`);
});

Deno.test("image plugin: sizes, names, bytes sources and parameters", async () => {
  const bytes = await Deno.readFile(new URL("chelsea.png", EXAMPLES));
  const batch = await runImage(
    [{ name: "dir/cat.png", bytes }, { name: "other/cat.png", bytes }],
    { preset: "none", size: [100, 120] },
    [-1, 3, -1, -1],
  );
  assert.deepEqual(batch.tensor.dims, [2, 3, 100, 120]);
  assert.deepEqual(batch.names, ["cat", "cat-2"]);
  const direct = resizeBilinear(decodeFile(bytes, "cat"), { width: 120, height: 100 });
  assert.equal(batch.tensor.data[0], Math.fround(direct.data[0] / 255));
  assert.equal(batch.images![0].width, 120);
  assert.throws(() => imagePreprocess.params.parse({ presets: "imagenet" }));
  assert.throws(() => imagePreprocess.params.parse({ preset: "resnet" }));
  await assert.rejects(
    runImage([{ name: "x.png", bytes }], {}, [-1, 3, -1, -1]),
    /no fixed height and width, set "size"/,
  );
  await assert.rejects(
    runImage([{ name: "x.png", bytes }], { mean: [0.5] }),
    /Cannot use mean \[0.5\]: it has 1 value\(s\), preset "imagenet" makes 3 channel\(s\)/,
  );
  assert.equal(fileStem("a/b.c/photo.final.jpg"), "photo.final");
  assert.equal(fileStem(".hidden"), ".hidden");
  assert.deepEqual(uniqueNames(["a", "b", "a", "a"]), ["a", "b", "a-2", "a-3"]);
});

Deno.test("decode errors are one line and name the file", async () => {
  const png = await Deno.readFile(new URL("chelsea.png", EXAMPLES));
  const jpg = await Deno.readFile(new URL("grace_hopper.jpg", EXAMPLES));
  assert.throws(
    () => decodeImage(new TextEncoder().encode("hello, world"), "x.txt"),
    { message: 'Cannot decode "x.txt": not a PNG or JPEG file' },
  );
  assert.throws(
    () => decodeImage(png.subarray(0, png.length >> 1), "x.png"),
    { message: 'Cannot decode "x.png": corrupt PNG data (file ends early)' },
  );
  assert.throws(
    () => decodeImage(jpg.subarray(0, jpg.length >> 1), "x.jpg"),
    { message: 'Cannot decode "x.jpg": corrupt JPEG data (truncated: no end-of-image marker)' },
  );
  const flipped = png.slice();
  flipped[png.length >> 1] ^= 0xff;
  assert.throws(() => decodeImage(flipped, "flip.png"), (e: Error) => {
    assert.match(e.message, /^Cannot decode "flip\.png": corrupt PNG data \(CRC mismatch .+\)$/);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
  const garbled = jpg.slice();
  garbled.fill(0x55, 2000, 2100);
  assert.throws(
    () => decodeImage(garbled, "garbled.jpg"),
    /^Error: Cannot decode "garbled\.jpg": corrupt JPEG data \([^\n]+\)$/,
  );
  // The PNG signature and a header claiming 100000x100000 pixels, and nothing else: it must
  // fail from the header, before any pixel memory is taken.
  const bomb = png.slice(0, 33);
  new DataView(bomb.buffer).setUint32(16, 100_000);
  new DataView(bomb.buffer).setUint32(20, 100_000);
  assert.throws(() => decodeImage(bomb, "bomb.png"), {
    message:
      'Cannot decode "bomb.png": 100000x100000 is 10000 megapixels, over the limit of 50 megapixels',
  });
  const bigJpeg = jpg.slice();
  const sof = bigJpeg.findIndex((b, i) => b === 0xff && bigJpeg[i + 1] === 0xc0);
  bigJpeg.set([0xff, 0xff, 0xff, 0xff], sof + 5);
  assert.throws(() => decodeImage(bigJpeg, "big.jpg"), /65535x65535 is 4290 megapixels/);
  assert.throws(
    () => decodeImage(png, "small.png", { maxPixels: 1000 }),
    /451x300 is 0\.135 megapixels, over the limit of 0\.001 megapixels$/,
  );
});

Deno.test("image plugin errors: channel count, missing file, bad bytes", async () => {
  const bytes = await Deno.readFile(new URL("chelsea.png", EXAMPLES));
  await assert.rejects(
    runImage([{ name: "x.png", bytes }], { preset: "imagenet" }, [1, 1, 224, 224]),
    {
      name: "LanternError",
      message:
        'Cannot preprocess "x.png" for model: it takes 1 channel(s), preset "imagenet" makes 3 — use preset "grayscale"',
    },
  );
  await assert.rejects(runImage(["x.png"]), {
    name: "LanternError",
    message: 'Cannot read input "x.png": file not found',
  });
  await assert.rejects(runImage([{ name: "notes.txt", bytes: new Uint8Array(100) }]), {
    name: "LanternError",
    message: 'Cannot decode "notes.txt": not a PNG or JPEG file',
  });
});

Deno.test("npy plugin: concatenates along the batch and checks the model shape", async () => {
  const a = encodeNpy(tensor(new Float32Array(2 * 3 * 4 * 5).map((_, i) => i), [2, 3, 4, 5]));
  const b = encodeNpy(tensor(new Float32Array(3 * 4 * 5).fill(-1), [3, 4, 5]));
  const model = fakeModel([-1, 3, 4, 5]);
  const params = npyPreprocess.params.parse({});
  const batch = await npyPreprocess.run(
    { sources: [{ name: "in/pair.npy", bytes: a }, { name: "one.npy", bytes: b }], model },
    params,
  );
  assert.deepEqual(batch.tensor.dims, [3, 3, 4, 5]);
  assert.equal(batch.tensor.layout, "NCHW");
  assert.deepEqual(batch.names, ["pair_0", "pair_1", "one"]);
  assert.equal(batch.tensor.data[119], 119);
  assert.equal(batch.tensor.data[120], -1);
  assert.equal(batch.images, undefined);

  const wrong = encodeNpy(tensor(new Float32Array(3 * 200 * 200), [1, 3, 200, 200]));
  await assert.rejects(
    npyPreprocess.run(
      { sources: [{ name: "x.npy", bytes: wrong }], model: fakeModel([-1, 3, 224, 224]) },
      params,
    ),
    {
      name: "LanternError",
      message:
        'Cannot use "x.npy" as input of model fake.onnx: expected [N,3,224,224], got [1,3,200,200]',
    },
  );
  await assert.rejects(
    npyPreprocess.run({ sources: [{ name: "x.npy", bytes: new Uint8Array(20) }], model }, params),
    /^LanternError: Cannot read "x\.npy": not a \.npy file/,
  );
  await assert.rejects(npyPreprocess.run({ sources: ["missing.npy"], model }, params), {
    message: 'Cannot read input "missing.npy": file not found',
  });
});

Deno.test("imagesToTensor: custom scale, mean and std", () => {
  const image: RgbaImage = { width: 1, height: 1, data: new Uint8ClampedArray([255, 0, 100, 7]) };
  const t = imagesToTensor([image], { mean: [1, 0, 0], std: [2, 1, 4], scale: 1 / 100 });
  assert.deepEqual([...t.data], [Math.fround(0.775), 0, Math.fround(0.25)]);
  assert.throws(() => imagesToTensor([image], { mean: [0], std: [1] }), /3 channel/);
});
