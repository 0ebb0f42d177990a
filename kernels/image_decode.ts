/**
 * PNG and JPEG decoding to 8-bit RGBA, giving the pixels PIL gives torchvision.
 *
 * PNG goes through `fast-png` and then the same sample mapping as PIL: 16-bit samples keep
 * their high byte, 1/2/4-bit grey is scaled to 0–255, and palettes are expanded. JPEG goes
 * through `jpeg-js` for the entropy decoding and inverse DCT. The chroma upsampling and the
 * YCbCr→RGB conversion are done here with libjpeg-turbo's integer arithmetic instead of
 * jpeg-js's own. jpeg-js repeats chroma samples and truncates the colour conversion, which
 * puts edges tens of levels away from what PIL decodes (46/255 on grace_hopper.jpg). What is
 * left is jpeg-js's inverse DCT, which rounds differently from libjpeg's "islow": up to 3
 * levels on a pixel, about 0.1 on average (tests/image_test.ts measures it).
 *
 * One deliberate departure from PIL: 16-bit greyscale PNGs keep their high byte like every
 * other 16-bit type, where PIL opens them as 32-bit mode "I" and `.convert("RGB")` clips
 * them at 255.
 *
 * The format is sniffed from the magic bytes, never from the file name. Image dimensions are
 * checked against `maxPixels` from the header, before any pixel memory is allocated.
 *
 * Web-standard only (no `Deno` APIs), so it runs on edge runtimes.
 *
 * @module
 */
import { decode as decodePng, type DecodedPng } from "fast-png";
import { decode as decodeJpeg } from "jpeg-js";
import type { RgbaImage } from "../pipeline/types.ts";

/** Default limit on decoded pixels: 50 megapixels. */
export const DEFAULT_MAX_PIXELS = 50_000_000;

/** The image formats {@linkcode decodeImage} reads. */
export type ImageFormat = "png" | "jpeg";

/** Options of {@linkcode decodeImage}. */
export interface DecodeOptions {
  /**
   * Largest `width * height` to decode, checked from the file header before decoding, so a
   * small file that claims a huge image (a decompression bomb) fails fast. Default 50 million.
   */
  readonly maxPixels?: number;
}

/** What the header of an image file says, read without decoding pixels. */
export interface ImageHeader {
  /** File format, from the magic bytes. */
  readonly format: ImageFormat;
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format of an image file from its first bytes, or `undefined` if it is neither. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && PNG_MAGIC.every((m, i) => bytes[i] === m)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return "jpeg";
  }
  return undefined;
}

/**
 * Read the format and size of a PNG or JPEG file from its header.
 *
 * @throws {Error} if the bytes are not a PNG or JPEG file, or the header is damaged.
 */
export function readImageHeader(bytes: Uint8Array, name: string): ImageHeader {
  const format = sniffFormat(bytes);
  if (format === "png") return { format, ...pngHeader(bytes, name) };
  if (format === "jpeg") return { format, ...jpegHeader(bytes, name) };
  throw decodeError(name, "not a PNG or JPEG file");
}

/**
 * Decode a PNG or JPEG file to RGBA. `name` is only used in error messages.
 *
 * PNG: every colour type at every bit depth, interlaced or not (interlaced 1/2/4-bit files are
 * refused). JPEG: baseline, extended and progressive, 8-bit, greyscale, YCbCr or RGB (CMYK
 * goes through jpeg-js's own conversion, unchecked against PIL); EXIF orientation is ignored,
 * as PIL's `Image.open` ignores it.
 *
 * @throws {Error} one line, e.g. `Cannot decode "x.png": corrupt PNG data (...)`.
 */
export function decodeImage(
  bytes: Uint8Array,
  name: string,
  options: DecodeOptions = {},
): RgbaImage {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const header = readImageHeader(bytes, name);
  const pixels = header.width * header.height;
  if (pixels > maxPixels) {
    throw decodeError(
      name,
      `${header.width}x${header.height} is ${megapixels(pixels)} megapixels, over the limit of ${
        megapixels(maxPixels)
      } megapixels`,
    );
  }
  return header.format === "png" ? pngToRgba(bytes, name) : jpegToRgba(bytes, name, maxPixels);
}

function decodeError(name: string, what: string): Error {
  return new Error(`Cannot decode "${name}": ${what}`);
}

function megapixels(n: number): string {
  return String(Number((n / 1e6).toPrecision(3)));
}

function oneLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.replace(/\s+/g, " ").trim() || "unknown error";
}

// --- PNG ---------------------------------------------------------------------------------------

const PNG_DEPTHS: Record<number, readonly number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

function pngHeader(bytes: Uint8Array, name: string): { width: number; height: number } {
  const ihdr = String.fromCharCode(...bytes.subarray(12, 16));
  if (bytes.length < 33 || ihdr !== "IHDR") {
    throw decodeError(name, "corrupt PNG data (no IHDR chunk after the signature)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = bytes[24], colorType = bytes[25], interlace = bytes[28];
  if (width === 0 || height === 0) {
    throw decodeError(name, `corrupt PNG data (image size ${width}x${height})`);
  }
  if (!PNG_DEPTHS[colorType]?.includes(depth)) {
    throw decodeError(name, `corrupt PNG data (bit depth ${depth} with colour type ${colorType})`);
  }
  if (interlace === 1 && depth < 8) {
    // fast-png de-interlaces whole bytes only, which scrambles packed sub-byte samples.
    throw decodeError(name, `interlaced PNGs with ${depth}-bit samples are not supported`);
  }
  return { width, height };
}

function pngToRgba(bytes: Uint8Array, name: string): RgbaImage {
  let png: DecodedPng;
  try {
    png = decodePng(bytes, { checkCrc: true });
  } catch (e) {
    // fast-png reads past the end of a cut-off file through a DataView, which says only that.
    const why = e instanceof RangeError && /bounds/.test(e.message)
      ? "file ends early"
      : oneLine(e);
    throw decodeError(name, `corrupt PNG data (${why})`);
  }
  const { width, height, depth, channels, data, palette, transparency } = png;
  const n = width * height;
  const packed = depth < 8;
  const rowBytes = Math.ceil((width * depth * channels) / 8);
  const expected = packed ? rowBytes * height : n * channels;
  if (data.length !== expected) {
    throw decodeError(name, `corrupt PNG data (${data.length} samples, expected ${expected})`);
  }
  const out = new Uint8ClampedArray(n * 4);
  if (channels === 1 && palette) {
    expandPalette(data as Uint8Array, png, out);
    return { width, height, data: out };
  }
  // 16-bit samples keep their high byte, as PIL's "RGB;16B"-style unpackers do.
  const shift = depth === 16 ? 8 : 0;
  if (packed) {
    const scale = 255 / ((1 << depth) - 1);
    const key = transparency?.[0];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bit = x * depth;
        const raw = (data[y * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) &
          ((1 << depth) - 1);
        const o = (y * width + x) * 4;
        out[o] = out[o + 1] = out[o + 2] = raw * scale;
        out[o + 3] = raw === key ? 0 : 255;
      }
    }
    return { width, height, data: out };
  }
  if (channels === 1 || channels === 2) {
    const key = channels === 1 ? transparency?.[0] : undefined;
    for (let i = 0; i < n; i++) {
      const g = data[i * channels];
      const o = i * 4;
      out[o] = out[o + 1] = out[o + 2] = g >> shift;
      out[o + 3] = channels === 2 ? data[i * 2 + 1] >> shift : g === key ? 0 : 255;
    }
  } else {
    const key = channels === 3 && transparency?.length === 3 ? transparency : undefined;
    for (let i = 0; i < n; i++) {
      const s = i * channels, o = i * 4;
      const r = data[s], g = data[s + 1], b = data[s + 2];
      out[o] = r >> shift;
      out[o + 1] = g >> shift;
      out[o + 2] = b >> shift;
      out[o + 3] = channels === 4
        ? data[s + 3] >> shift
        : key && r === key[0] && g === key[1] && b === key[2]
        ? 0
        : 255;
    }
  }
  return { width, height, data: out };
}

function expandPalette(data: Uint8Array, png: DecodedPng, out: Uint8ClampedArray): void {
  const { width, height, depth } = png;
  const palette = png.palette!;
  // Indices past the palette's end read as opaque black, like PIL's zero-padded palette.
  const lut = new Uint8Array(256 * 4);
  for (let i = 0; i < 256; i++) {
    const entry = palette[i];
    lut[i * 4 + 3] = 255;
    if (!entry) continue;
    lut[i * 4] = entry[0];
    lut[i * 4 + 1] = entry[1];
    lut[i * 4 + 2] = entry[2];
    if (entry.length > 3) lut[i * 4 + 3] = entry[3];
  }
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const index = (data[y * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
      const o = (y * width + x) * 4;
      out[o] = lut[index * 4];
      out[o + 1] = lut[index * 4 + 1];
      out[o + 2] = lut[index * 4 + 2];
      out[o + 3] = lut[index * 4 + 3];
    }
  }
}

// --- JPEG --------------------------------------------------------------------------------------

interface JpegComponent {
  readonly id: number;
  readonly h: number;
  readonly v: number;
}

interface JpegInfo {
  readonly width: number;
  readonly height: number;
  readonly components: readonly JpegComponent[];
  readonly jfif: boolean;
  /** Byte offset of the Adobe APP14 colour-transform flag, if there is such a segment. */
  readonly adobeTransformAt?: number;
  /** Byte offset of the first start-of-scan marker. */
  readonly scanAt: number;
}

const SOF_NAMES: Record<number, string> = {
  0xc3: "lossless",
  0xc5: "differential sequential",
  0xc6: "differential progressive",
  0xc7: "differential lossless",
  0xc9: "arithmetic-coded sequential",
  0xca: "arithmetic-coded progressive",
  0xcb: "arithmetic-coded lossless",
  0xcd: "arithmetic-coded differential sequential",
  0xce: "arithmetic-coded differential progressive",
  0xcf: "arithmetic-coded differential lossless",
};

function jpegHeader(bytes: Uint8Array, name: string): { width: number; height: number } {
  const info = parseJpeg(bytes, name);
  return { width: info.width, height: info.height };
}

/** Walk the marker segments up to the first scan; only headers are read. */
function parseJpeg(bytes: Uint8Array, name: string): JpegInfo {
  const corrupt = (what: string) => decodeError(name, `corrupt JPEG data (${what})`);
  let width = 0, height = 0, jfif = false, adobeTransformAt: number | undefined;
  let components: JpegComponent[] | undefined;
  let at = 2;
  while (true) {
    if (at >= bytes.length) throw corrupt("truncated before the first scan");
    if (bytes[at] !== 0xff) throw corrupt(`expected a marker at byte ${at}`);
    while (bytes[at] === 0xff) at++;
    if (at >= bytes.length) throw corrupt("truncated before the first scan");
    const marker = bytes[at++];
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;
    if (marker === 0xd9) throw corrupt("end of image before any scan");
    if (at + 2 > bytes.length) throw corrupt("truncated before the first scan");
    const length = (bytes[at] << 8) | bytes[at + 1];
    const body = at + 2, end = at + length;
    if (length < 2 || end > bytes.length) throw corrupt(`truncated segment at byte ${at - 2}`);
    if (marker === 0xda) {
      if (!components) throw corrupt("scan before the frame header");
      return { width, height, components, jfif, adobeTransformAt, scanAt: at - 2 };
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (SOF_NAMES[marker]) {
        throw decodeError(name, `${SOF_NAMES[marker]} JPEG is not supported`);
      }
      if (components) throw decodeError(name, "JPEG with more than one frame is not supported");
      const precision = bytes[body];
      if (precision !== 8) throw decodeError(name, `${precision}-bit JPEG is not supported`);
      height = (bytes[body + 1] << 8) | bytes[body + 2];
      width = (bytes[body + 3] << 8) | bytes[body + 4];
      const count = bytes[body + 5];
      if (length < 8 + 3 * count) throw corrupt("short frame header");
      components = [];
      for (let i = 0; i < count; i++) {
        const c = body + 6 + 3 * i;
        components.push({ id: bytes[c], h: bytes[c + 1] >> 4, v: bytes[c + 1] & 15 });
      }
      if (width === 0 || height === 0) throw corrupt(`image size ${width}x${height}`);
      if (components.some((c) => c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4)) {
        throw corrupt("sampling factor outside 1-4");
      }
    } else if (marker === 0xe0 && length >= 7 && ascii(bytes, body, 5) === "JFIF\0") {
      jfif = true;
    } else if (marker === 0xee && length >= 14 && ascii(bytes, body, 5) === "Adobe") {
      adobeTransformAt = body + 11;
    }
    at = end;
  }
}

function ascii(bytes: Uint8Array, at: number, n: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + n));
}

/** Whether a JPEG's three components hold RGB rather than YCbCr, decided as libjpeg does. */
function isRgbJpeg(bytes: Uint8Array, info: JpegInfo): boolean {
  if (info.jfif) return false;
  if (info.adobeTransformAt !== undefined) return bytes[info.adobeTransformAt] === 0;
  const [a, b, c] = info.components.map((k) => k.id);
  return a === 0x52 && b === 0x47 && c === 0x42; // "R", "G", "B"
}

function hasEndMarker(bytes: Uint8Array, from: number): boolean {
  // Entropy-coded data never holds 0xFF 0xD9 (0xFF bytes are stuffed), so the first one after
  // the first scan is the real end of image; anything after it is ignored, as libjpeg does.
  for (let i = from; i + 1 < bytes.length; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return true;
  }
  return false;
}

function jpegToRgba(bytes: Uint8Array, name: string, maxPixels: number): RgbaImage {
  const info = parseJpeg(bytes, name);
  if (!hasEndMarker(bytes, info.scanAt)) {
    throw decodeError(name, "corrupt JPEG data (truncated: no end-of-image marker)");
  }
  const { width, height, components } = info;
  const raw3 = components.length === 3;
  let input = bytes;
  if (raw3 && info.adobeTransformAt !== undefined && bytes[info.adobeTransformAt] !== 0) {
    // jpeg-js forces its own colour conversion when the Adobe flag is set; clear the flag in a
    // copy so it hands back the raw YCbCr planes for the libjpeg-exact conversion below.
    input = bytes.slice();
    input[info.adobeTransformAt] = 0;
  }
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = decodeJpeg(input, {
      useTArray: true,
      formatAsRGBA: !raw3,
      colorTransform: raw3 ? false : undefined,
      maxResolutionInMP: maxPixels / 1e6,
      // jpeg-js keeps about 21 bytes per pixel alive at 4:4:4 (int32 coefficients, planes,
      // output); the pixel limit is the real guard, this one only stops runaway allocation.
      maxMemoryUsageInMB: Math.ceil((maxPixels * 24) / 2 ** 20) + 16,
    });
  } catch (e) {
    const why = oneLine(e);
    if (/maxMemoryUsageInMB|allocate/.test(why)) {
      throw decodeError(
        name,
        `needs more memory than allowed for ${megapixels(maxPixels)} megapixels (${why})`,
      );
    }
    throw decodeError(name, `corrupt JPEG data (${why})`);
  }
  if (decoded.width !== width || decoded.height !== height) {
    throw decodeError(name, "corrupt JPEG data (frame size changed while decoding)");
  }
  if (!raw3) {
    const data = decoded.data;
    return {
      width,
      height,
      data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length),
    };
  }
  const planes = upsamplePlanes(decoded.data, width, height, components);
  return { width, height, data: isRgbJpeg(bytes, info) ? interleave(planes) : ycc(planes) };
}

/**
 * Full-resolution planes of a three-component JPEG from jpeg-js's raw output, which repeats
 * subsampled samples. Components subsampled 2:1 in one or both axes are re-upsampled with
 * libjpeg-turbo's "fancy" triangle filters (its default, used by PIL); other ratios are plain
 * replication in libjpeg too, so jpeg-js's output is kept for them.
 */
function upsamplePlanes(
  raw: Uint8Array,
  width: number,
  height: number,
  components: readonly JpegComponent[],
): Uint8Array[] {
  const maxH = Math.max(...components.map((c) => c.h));
  const maxV = Math.max(...components.map((c) => c.v));
  return components.map((c, k) => {
    const h2 = c.h * 2 === maxH, v2 = c.v * 2 === maxV;
    const h1 = c.h === maxH, v1 = c.v === maxV;
    const dw = Math.ceil((width * c.h) / maxH), dh = Math.ceil((height * c.v) / maxV);
    const fancy = (h2 && v2 && dw > 2) || (h2 && v1 && dw > 2) || (h1 && v2);
    if (!fancy) {
      const plane = new Uint8Array(width * height);
      for (let i = 0; i < plane.length; i++) plane[i] = raw[i * 3 + k];
      return plane;
    }
    const sx = h2 ? 2 : 1, sy = v2 ? 2 : 1;
    const small = new Uint8Array(dw * dh);
    for (let y = 0; y < dh; y++) {
      const row = (y * sy * width) * 3 + k;
      for (let x = 0; x < dw; x++) small[y * dw + x] = raw[row + x * sx * 3];
    }
    if (h2 && v2) return fancyH2V2(small, dw, dh, width, height);
    if (h2) return fancyH2V1(small, dw, dh, width);
    return fancyH1V2(small, dw, dh, height);
  });
}

/** libjpeg-turbo `h2v2_fancy_upsample`: 9/16, 3/16, 3/16, 1/16 weights, edges replicated. */
function fancyH2V2(
  src: Uint8Array,
  dw: number,
  dh: number,
  width: number,
  height: number,
): Uint8Array {
  const out = new Uint8Array(width * height);
  const sums = new Int32Array(dw);
  for (let y = 0; y < height; y++) {
    const near = y >> 1;
    const far = (y & 1) === 0 ? Math.max(near - 1, 0) : Math.min(near + 1, dh - 1);
    for (let x = 0; x < dw; x++) sums[x] = src[near * dw + x] * 3 + src[far * dw + x];
    const o = y * width;
    const put = (x: number, v: number) => {
      if (x < width) out[o + x] = v;
    };
    put(0, (sums[0] * 4 + 8) >> 4);
    put(1, (sums[0] * 3 + sums[1] + 7) >> 4);
    for (let x = 1; x < dw - 1; x++) {
      put(2 * x, (sums[x] * 3 + sums[x - 1] + 8) >> 4);
      put(2 * x + 1, (sums[x] * 3 + sums[x + 1] + 7) >> 4);
    }
    const last = dw - 1;
    put(2 * last, (sums[last] * 3 + sums[last - 1] + 8) >> 4);
    put(2 * last + 1, (sums[last] * 4 + 7) >> 4);
  }
  return out;
}

/** libjpeg-turbo `h2v1_fancy_upsample`: 3/4 nearer, 1/4 further sample along rows. */
function fancyH2V1(src: Uint8Array, dw: number, dh: number, width: number): Uint8Array {
  const out = new Uint8Array(width * dh);
  for (let y = 0; y < dh; y++) {
    const s = y * dw, o = y * width;
    const put = (x: number, v: number) => {
      if (x < width) out[o + x] = v;
    };
    put(0, src[s]);
    put(1, (src[s] * 3 + src[s + 1] + 2) >> 2);
    for (let x = 1; x < dw - 1; x++) {
      const v = src[s + x] * 3;
      put(2 * x, (v + src[s + x - 1] + 1) >> 2);
      put(2 * x + 1, (v + src[s + x + 1] + 2) >> 2);
    }
    const last = dw - 1;
    put(2 * last, (src[s + last] * 3 + src[s + last - 1] + 1) >> 2);
    put(2 * last + 1, src[s + last]);
  }
  return out;
}

/** libjpeg-turbo `h1v2_fancy_upsample`: 3/4 nearer, 1/4 further row, edges replicated. */
function fancyH1V2(src: Uint8Array, dw: number, dh: number, height: number): Uint8Array {
  const out = new Uint8Array(dw * height);
  for (let y = 0; y < height; y++) {
    const near = y >> 1;
    const above = (y & 1) === 0;
    const far = above ? Math.max(near - 1, 0) : Math.min(near + 1, dh - 1);
    const bias = above ? 1 : 2;
    for (let x = 0; x < dw; x++) {
      out[y * dw + x] = (src[near * dw + x] * 3 + src[far * dw + x] + bias) >> 2;
    }
  }
  return out;
}

// libjpeg's jdcolor.c tables: 16-bit fixed point, rounded once per term.
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
const CR_G = new Int32Array(256);
const CB_G = new Int32Array(256);
{
  const fix = (x: number) => Math.trunc(x * 65536 + 0.5);
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    CR_R[i] = (fix(1.402) * x + 32768) >> 16;
    CB_B[i] = (fix(1.772) * x + 32768) >> 16;
    CR_G[i] = -fix(0.71414) * x;
    CB_G[i] = -fix(0.34414) * x + 32768;
  }
}

function ycc(planes: readonly Uint8Array[]): Uint8ClampedArray {
  const [yp, cbp, crp] = planes;
  const out = new Uint8ClampedArray(yp.length * 4);
  for (let i = 0; i < yp.length; i++) {
    const y = yp[i], cb = cbp[i], cr = crp[i], o = i * 4;
    out[o] = y + CR_R[cr];
    out[o + 1] = y + ((CB_G[cb] + CR_G[cr]) >> 16);
    out[o + 2] = y + CB_B[cb];
    out[o + 3] = 255;
  }
  return out;
}

function interleave(planes: readonly Uint8Array[]): Uint8ClampedArray {
  const [r, g, b] = planes;
  const out = new Uint8ClampedArray(r.length * 4);
  for (let i = 0; i < r.length; i++) {
    out[i * 4] = r[i];
    out[i * 4 + 1] = g[i];
    out[i * 4 + 2] = b[i];
    out[i * 4 + 3] = 255;
  }
  return out;
}
