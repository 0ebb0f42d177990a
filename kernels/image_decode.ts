/**
 * PNG and JPEG decoding to 8-bit RGBA, giving the pixels PIL gives torchvision.
 *
 * PNG goes through `fast-png` and then the same sample mapping as PIL: 16-bit samples keep
 * their high byte, 1/2/4-bit grey is scaled to 0–255, and palettes are expanded. JPEG goes
 * through `jpeg_decode.ts`, a port of the arithmetic libjpeg-turbo runs under PIL, which
 * gives PIL's pixels exactly (tests/image_test.ts checks it on every sampling mode).
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
import type { RgbaImage } from "../pipeline/types.ts";
import { decodeJpeg, readJpegHeader } from "./jpeg_decode.ts";

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
  if (format === "jpeg") {
    const { width, height } = readJpegHeader(bytes, name);
    return { format, width, height };
  }
  throw decodeError(name, "not a PNG or JPEG file");
}

/**
 * Decode a PNG or JPEG file to RGBA. `name` is only used in error messages.
 *
 * PNG: every colour type at every bit depth, interlaced or not (interlaced 1/2/4-bit files are
 * refused). JPEG: baseline, extended and progressive Huffman-coded 8-bit files, greyscale,
 * YCbCr, RGB, CMYK or YCCK, any sampling factors libjpeg takes; EXIF orientation is ignored, as
 * PIL's `Image.open` ignores it.
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
  return header.format === "png" ? pngToRgba(bytes, name) : decodeJpeg(bytes, name, { maxPixels });
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
