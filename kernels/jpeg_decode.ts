/**
 * JPEG decoding that gives the same pixels as libjpeg-turbo 2.1, the library behind PIL 9.4,
 * so that Lantern's preprocessing sees what torchvision sees.
 *
 * Entropy decoding (Huffman, sequential and progressive, restart intervals) is lossless, so any
 * correct decoder gets the same coefficients. The pixels then depend on three lossy steps, each
 * a port of what libjpeg-turbo runs with its default settings (the ones PIL uses):
 *
 * - Dequantization and inverse DCT: `jpeg_idct_islow` (jidctint.c, 13-bit constants, 2 extra
 *   bits between passes). On x86-64 libjpeg-turbo runs it as SIMD code (SSE2 and AVX2 compute
 *   the same) that keeps 16-bit lanes: dequantized values and some sums wrap at 16 bits, the
 *   pass-1 results saturate to 16 bits and the output saturates to 0–255, where the C code
 *   wraps through its range-limit table. On the coefficients real encoders write the two are
 *   bit-identical; on crafted out-of-range ones they are not, and this port follows the SIMD
 *   code, which is what PIL runs (tests/fixtures/images/jpeg_quant16_64x40.jpg pins it).
 * - Chroma upsampling: libjpeg's "fancy" triangle filters (jdsample.c `h2v1_fancy_upsample`,
 *   `h2v2_fancy_upsample`, `h1v2_fancy_upsample`), with the same edge rules, and plain
 *   replication where libjpeg falls back to it (components 1–2 samples wide, other ratios).
 * - Colour conversion: jdcolor.c's 16-bit fixed-point YCbCr→RGB tables (and YCCK→CMYK), then
 *   PIL's own CMYK→RGB for four-component files.
 *
 * Not reproduced: libjpeg's block smoothing, which it applies only to progressive files whose
 * scans stop before the low-frequency coefficients are complete (every ordinary encoder
 * finishes them). Where libjpeg only warns about damaged data and goes on with zeros, this
 * decoder stops with an error: bad Huffman codes, scan data that ends early, missing restart
 * markers. Arithmetic coding, lossless and 12-bit JPEG are refused, and so are 2-component
 * files, which PIL refuses too.
 *
 * Written for Lantern from the JPEG specification (ITU T.81) and the libjpeg-turbo sources it
 * reproduces; no code is taken from jpeg-js or pdf.js. Web-standard only (no `Deno` APIs).
 *
 * @module
 */
import type { RgbaImage } from "../pipeline/types.ts";

/** What the frame header of a JPEG file says. */
export interface JpegHeader {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Colour components: 1 (grey), 3 (YCbCr or RGB) or 4 (CMYK or YCCK). */
  readonly components: number;
  /** Whether the frame is progressive (SOF2). */
  readonly progressive: boolean;
}

/** Options of {@linkcode decodeJpeg}. */
export interface JpegDecodeOptions {
  /**
   * Largest `width * height` to decode, checked from the frame header before any pixel memory
   * is allocated. Default 50 million, as in `decodeImage`.
   */
  readonly maxPixels?: number;
}

const DEFAULT_MAX_PIXELS = 50_000_000;
/** libjpeg's JPEG_MAX_DIMENSION. */
const MAX_DIMENSION = 65500;

/**
 * Read the frame header of a JPEG file without decoding any pixels.
 *
 * @throws {Error} one line, e.g. `Cannot decode "x.jpg": corrupt JPEG data (...)`, if there is
 * no frame header before the first scan, or the frame is of a kind this decoder refuses.
 */
export function readJpegHeader(bytes: Uint8Array, name: string): JpegHeader {
  const fail: Fail = failure(name);
  if (bytes.length < 3 || bytes[0] !== 0xff || bytes[1] !== 0xd8) fail("not a JPEG file");
  let p = 2;
  while (true) {
    const at = nextMarker(bytes, p);
    if (at < 0) fail("corrupt JPEG data (truncated before the frame header)");
    const marker = bytes[at];
    p = at + 1;
    if (isParameterless(marker)) continue;
    if (marker === 0xd9 || marker === 0xda) {
      fail("corrupt JPEG data (no frame header before the scan)");
    }
    const end = segmentEnd(bytes, p, fail);
    if (isFrameMarker(marker)) {
      const frame = readFrame(bytes, marker, p + 2, end, fail);
      return {
        width: frame.width,
        height: frame.height,
        components: frame.components.length,
        progressive: frame.progressive,
      };
    }
    p = end;
  }
}

/**
 * Decode a JPEG file to RGBA (alpha 255), pixel for pixel as PIL 9.4's
 * `Image.open(f).convert("RGB")`. `name` is only used in error messages. EXIF orientation is
 * ignored, as `Image.open` ignores it.
 *
 * @throws {Error} one line, e.g. `Cannot decode "x.jpg": corrupt JPEG data (...)`.
 */
export function decodeJpeg(
  bytes: Uint8Array,
  name: string,
  options: JpegDecodeOptions = {},
): RgbaImage {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const fail: Fail = failure(name);
  if (bytes.length < 3 || bytes[0] !== 0xff || bytes[1] !== 0xd8) fail("not a JPEG file");
  const qTables: (Uint16Array | undefined)[] = [];
  const dcTables: (Huffman | undefined)[] = [];
  const acTables: (Huffman | undefined)[] = [];
  let frame: Frame | undefined;
  let restartInterval = 0;
  let jfif = false;
  let adobeTransform = -1;
  let scans = 0;
  let p = 2;
  while (true) {
    const at = nextMarker(bytes, p);
    if (at < 0) fail("corrupt JPEG data (truncated: no end-of-image marker)");
    const marker = bytes[at];
    p = at + 1;
    if (isParameterless(marker)) continue;
    if (marker === 0xd9) break;
    if (marker === 0xd8) fail("corrupt JPEG data (a second start-of-image marker)");
    const end = segmentEnd(bytes, p, fail);
    const body = p + 2;
    if (isFrameMarker(marker)) {
      if (frame) fail("JPEG with more than one frame is not supported");
      frame = readFrame(bytes, marker, body, end, fail);
      checkSize(frame, maxPixels, fail);
      allocate(frame);
    } else if (marker === 0xc4) {
      readHuffmanTables(bytes, body, end, dcTables, acTables, fail);
    } else if (marker === 0xdb) {
      readQuantTables(bytes, body, end, qTables, fail);
    } else if (marker === 0xdd) {
      if (end - body < 2) fail("corrupt JPEG data (short restart-interval segment)");
      restartInterval = (bytes[body] << 8) | bytes[body + 1];
    } else if (marker === 0xe0) {
      // libjpeg counts a JFIF marker only with its full 14-byte header.
      if (end - body >= 14 && ascii(bytes, body, 5) === "JFIF\0") jfif = true;
    } else if (marker === 0xee) {
      if (end - body >= 12 && ascii(bytes, body, 5) === "Adobe") adobeTransform = bytes[body + 11];
    } else if (marker === 0xda) {
      if (!frame) fail("corrupt JPEG data (scan before the frame header)");
      const scan = readScan(bytes, body, end, frame, fail);
      for (const c of scan.components) latchQuantTable(c, qTables, fail);
      p = decodeScan(bytes, end, frame, scan, {
        dcTables,
        acTables,
        restartInterval,
        fail,
      });
      scans++;
      continue;
    }
    p = end;
  }
  if (!frame || scans === 0) fail("corrupt JPEG data (end of image before any scan)");
  for (const c of frame.components) {
    // A component no scan mentions decodes as zero coefficients: mid-grey, as in libjpeg.
    if (!c.quant) c.plane.fill(128);
    else if (frame.progressive) idctComponent(c);
  }
  return toRgba(frame, colourSpace(frame, jfif, adobeTransform));
}

// --- errors ------------------------------------------------------------------------------------

type Fail = (what: string) => never;

function failure(name: string): Fail {
  return (what: string) => {
    throw new Error(`Cannot decode "${name}": ${what}`);
  };
}

function megapixels(n: number): string {
  return String(Number((n / 1e6).toPrecision(3)));
}

// --- markers and segments ----------------------------------------------------------------------

/**
 * Index of the code byte of the next marker at or after `p`, or -1 at the end of the data.
 * Stray bytes before a marker, `FF 00` pairs included, are skipped as libjpeg skips them (with
 * a warning).
 */
function nextMarker(d: Uint8Array, p: number): number {
  const n = d.length;
  while (p < n) {
    if (d[p] !== 0xff) {
      p++;
      continue;
    }
    while (p < n && d[p] === 0xff) p++;
    if (p >= n) return -1;
    if (d[p] !== 0) return p;
  }
  return -1;
}

function isParameterless(marker: number): boolean {
  return marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7);
}

function isFrameMarker(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
    marker !== 0xcc;
}

/** End of the segment whose length field is at `p`. */
function segmentEnd(d: Uint8Array, p: number, fail: Fail): number {
  if (p + 2 > d.length) fail("corrupt JPEG data (truncated: no end-of-image marker)");
  const length = (d[p] << 8) | d[p + 1];
  if (length < 2) fail(`corrupt JPEG data (segment length ${length} at byte ${p})`);
  if (p + length > d.length) fail("corrupt JPEG data (truncated: no end-of-image marker)");
  return p + length;
}

function ascii(d: Uint8Array, at: number, n: number): string {
  return String.fromCharCode(...d.subarray(at, at + n));
}

// --- frame -------------------------------------------------------------------------------------

interface Component {
  readonly id: number;
  readonly h: number;
  readonly v: number;
  readonly tq: number;
  /** Samples per row and rows, before upsampling: libjpeg's `downsampled_width/height`. */
  dw: number;
  dh: number;
  /** Blocks holding image data, per row and per column. */
  blocksPerLine: number;
  blocksPerColumn: number;
  /** Blocks per row including the padding of whole MCUs; the plane's stride is 8 times it. */
  paddedBlocksPerLine: number;
  paddedBlocksPerColumn: number;
  /** Decoded samples, `paddedBlocksPerLine * 8` wide; saturation to 0–255 is part of the IDCT. */
  plane: Uint8ClampedArray;
  /** Coefficients in natural order, kept across the scans of a progressive frame. */
  coefficients?: Int16Array;
  /** The quantization table latched at the component's first scan, as libjpeg's int16 copy. */
  quant?: Int16Array;
  /** DC predictor. */
  pred: number;
}

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly progressive: boolean;
  readonly components: Component[];
  readonly maxH: number;
  readonly maxV: number;
  readonly mcusPerLine: number;
  readonly mcusPerColumn: number;
}

const UNSUPPORTED_FRAMES: Record<number, string> = {
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

function readFrame(d: Uint8Array, marker: number, p: number, end: number, fail: Fail): Frame {
  if (UNSUPPORTED_FRAMES[marker]) fail(`${UNSUPPORTED_FRAMES[marker]} JPEG is not supported`);
  if (end - p < 6) fail("corrupt JPEG data (short frame header)");
  const precision = d[p];
  if (precision !== 8) fail(`${precision}-bit JPEG is not supported`);
  const height = (d[p + 1] << 8) | d[p + 2];
  const width = (d[p + 3] << 8) | d[p + 4];
  const count = d[p + 5];
  if (end - p < 6 + 3 * count) fail("corrupt JPEG data (short frame header)");
  if (width === 0 || height === 0) fail(`corrupt JPEG data (image size ${width}x${height})`);
  if (count !== 1 && count !== 3 && count !== 4) {
    fail(`JPEG with ${count} colour components is not supported`);
  }
  const components: Component[] = [];
  for (let i = 0; i < count; i++) {
    const c = p + 6 + 3 * i;
    const h = d[c + 1] >> 4, v = d[c + 1] & 15;
    if (h < 1 || h > 4 || v < 1 || v > 4) fail("corrupt JPEG data (sampling factor outside 1-4)");
    if (d[c + 2] > 3) fail(`corrupt JPEG data (quantization table ${d[c + 2]})`);
    if (components.some((k) => k.id === d[c])) {
      fail(`corrupt JPEG data (component id ${d[c]} repeated)`);
    }
    components.push({
      id: d[c],
      h,
      v,
      tq: d[c + 2],
      dw: 0,
      dh: 0,
      blocksPerLine: 0,
      blocksPerColumn: 0,
      paddedBlocksPerLine: 0,
      paddedBlocksPerColumn: 0,
      plane: new Uint8ClampedArray(0),
      pred: 0,
    });
  }
  // A single-component frame has no subsampling, whatever factors it declares.
  const maxH = count === 1 ? components[0].h : Math.max(...components.map((c) => c.h));
  const maxV = count === 1 ? components[0].v : Math.max(...components.map((c) => c.v));
  for (const c of components) {
    if (maxH % c.h !== 0 || maxV % c.v !== 0) {
      fail(
        `JPEG with fractional subsampling (component ${c.id} is ${c.h}x${c.v} of ${maxH}x${maxV}) is not supported`,
      );
    }
  }
  return {
    width,
    height,
    progressive: marker === 0xc2,
    components,
    maxH,
    maxV,
    mcusPerLine: Math.ceil(width / (8 * maxH)),
    mcusPerColumn: Math.ceil(height / (8 * maxV)),
  };
}

function checkSize(frame: Frame, maxPixels: number, fail: Fail): void {
  const { width, height } = frame;
  const pixels = width * height;
  if (pixels > maxPixels) {
    fail(
      `${width}x${height} is ${megapixels(pixels)} megapixels, over the limit of ${
        megapixels(maxPixels)
      } megapixels`,
    );
  }
  if (width > MAX_DIMENSION || height > MAX_DIMENSION) {
    fail(`${width}x${height} is over libjpeg's limit of ${MAX_DIMENSION} pixels a side`);
  }
}

function allocate(frame: Frame): void {
  const single = frame.components.length === 1;
  for (const c of frame.components) {
    const h = single ? frame.maxH : c.h, v = single ? frame.maxV : c.v;
    c.dw = Math.ceil((frame.width * h) / frame.maxH);
    c.dh = Math.ceil((frame.height * v) / frame.maxV);
    c.blocksPerLine = Math.ceil(c.dw / 8);
    c.blocksPerColumn = Math.ceil(c.dh / 8);
    // A single-component frame is never interleaved, so its MCU is one block.
    c.paddedBlocksPerLine = single ? c.blocksPerLine : frame.mcusPerLine * c.h;
    c.paddedBlocksPerColumn = single ? c.blocksPerColumn : frame.mcusPerColumn * c.v;
    const blocks = c.paddedBlocksPerLine * c.paddedBlocksPerColumn;
    c.plane = new Uint8ClampedArray(blocks * 64);
    if (frame.progressive) c.coefficients = new Int16Array(blocks * 64);
  }
}

/** libjpeg's choice of colour space, from the markers and component ids (jdapimin.c). */
type ColourSpace = "gray" | "ycc" | "rgb" | "cmyk" | "ycck";

function colourSpace(frame: Frame, jfif: boolean, adobeTransform: number): ColourSpace {
  const ids = frame.components.map((c) => c.id);
  if (ids.length === 1) return "gray";
  if (ids.length === 4) return adobeTransform < 0 || adobeTransform === 0 ? "cmyk" : "ycck";
  if (jfif) return "ycc";
  if (adobeTransform >= 0) return adobeTransform === 0 ? "rgb" : "ycc";
  return ids[0] === 0x52 && ids[1] === 0x47 && ids[2] === 0x42 ? "rgb" : "ycc";
}

// --- tables ------------------------------------------------------------------------------------

/** Zig-zag position to natural (row-major) position. */
const NATURAL_ORDER = new Uint8Array([
  0,
  1,
  8,
  16,
  9,
  2,
  3,
  10,
  17,
  24,
  32,
  25,
  18,
  11,
  4,
  5,
  12,
  19,
  26,
  33,
  40,
  48,
  41,
  34,
  27,
  20,
  13,
  6,
  7,
  14,
  21,
  28,
  35,
  42,
  49,
  56,
  57,
  50,
  43,
  36,
  29,
  22,
  15,
  23,
  30,
  37,
  44,
  51,
  58,
  59,
  52,
  45,
  38,
  31,
  39,
  46,
  53,
  60,
  61,
  54,
  47,
  55,
  62,
  63,
]);

function readQuantTables(
  d: Uint8Array,
  p: number,
  end: number,
  tables: (Uint16Array | undefined)[],
  fail: Fail,
): void {
  while (p < end) {
    const wide = d[p] >> 4, id = d[p] & 15;
    if (wide > 1 || id > 3) fail(`corrupt JPEG data (quantization table ${d[p]})`);
    const size = wide ? 128 : 64;
    if (p + 1 + size > end) fail("corrupt JPEG data (short quantization table)");
    const table = new Uint16Array(64);
    for (let i = 0; i < 64; i++) {
      table[NATURAL_ORDER[i]] = wide ? (d[p + 1 + 2 * i] << 8) | d[p + 2 + 2 * i] : d[p + 1 + i];
    }
    tables[id] = table;
    p += 1 + size;
  }
}

function latchQuantTable(c: Component, tables: (Uint16Array | undefined)[], fail: Fail): void {
  if (c.quant) return;
  const table = tables[c.tq];
  if (!table) fail(`corrupt JPEG data (quantization table ${c.tq} is not defined)`);
  // libjpeg-turbo keeps the multipliers as int16 when built with SIMD.
  c.quant = new Int16Array(table);
}

/** A Huffman table: a 9-bit lookahead table, then canonical decoding for longer codes. */
interface Huffman {
  /** `(length << 8) | symbol` for codes of at most 9 bits, indexed by the next 9 bits; else 0. */
  readonly lookup: Uint16Array;
  /** Largest code of each length (index 1–16), or -1. */
  readonly maxCode: Int32Array;
  /** Index into `values` of a code of each length, minus that code. */
  readonly valueOffset: Int32Array;
  readonly values: Uint8Array;
}

const LOOKAHEAD = 9;

function buildHuffman(counts: Uint8Array, values: Uint8Array, fail: Fail): Huffman {
  const lookup = new Uint16Array(1 << LOOKAHEAD);
  const maxCode = new Int32Array(18).fill(-1);
  const valueOffset = new Int32Array(18);
  let code = 0, k = 0;
  for (let length = 1; length <= 16; length++) {
    const n = counts[length - 1];
    valueOffset[length] = k - code;
    for (let i = 0; i < n; i++, code++, k++) {
      if (length <= LOOKAHEAD) {
        const shift = LOOKAHEAD - length;
        lookup.fill((length << 8) | values[k], code << shift, (code + 1) << shift);
      }
    }
    if (n > 0) maxCode[length] = code - 1;
    // No code may be all ones (jdhuff.c checks the same).
    if (code >= 1 << length) fail("corrupt JPEG data (bad Huffman table)");
    code <<= 1;
  }
  return { lookup, maxCode, valueOffset, values };
}

function readHuffmanTables(
  d: Uint8Array,
  p: number,
  end: number,
  dcTables: (Huffman | undefined)[],
  acTables: (Huffman | undefined)[],
  fail: Fail,
): void {
  while (p < end) {
    const kind = d[p] >> 4, id = d[p] & 15;
    if (kind > 1 || id > 3) fail(`corrupt JPEG data (Huffman table ${d[p]})`);
    if (p + 17 > end) fail("corrupt JPEG data (short Huffman table)");
    const counts = d.subarray(p + 1, p + 17);
    const total = counts.reduce((a, b) => a + b, 0);
    if (total > 256 || p + 17 + total > end) fail("corrupt JPEG data (short Huffman table)");
    const values = d.slice(p + 17, p + 17 + total);
    // A DC symbol is a bit count, at most 15 (jdhuff.c checks the same).
    if (kind === 0 && values.some((s) => s > 15)) fail("corrupt JPEG data (bad Huffman table)");
    (kind === 0 ? dcTables : acTables)[id] = buildHuffman(counts, values, fail);
    p += 17 + total;
  }
}

// The tables of ITU T.81 K.3, which libjpeg-turbo installs when a file (often a Motion-JPEG
// frame) uses tables 0 or 1 without defining them (jstdhuff.c).
const STD_DC_COUNTS = [
  [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
  [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
];
const STD_DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const STD_AC_COUNTS = [
  [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
  [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
];
const STD_AC_VALUES = [
  "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa",
  "0001020311040521310612415107617113223281081442919aa1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9fa",
];

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(
    { length: hex.length / 2 },
    (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16),
  );
}

function standardTable(ac: boolean, id: number, fail: Fail): Huffman {
  return ac
    ? buildHuffman(Uint8Array.from(STD_AC_COUNTS[id]), hexBytes(STD_AC_VALUES[id]), fail)
    : buildHuffman(Uint8Array.from(STD_DC_COUNTS[id]), Uint8Array.from(STD_DC_VALUES), fail);
}

// --- scans -------------------------------------------------------------------------------------

interface ScanComponent {
  readonly component: Component;
  dc?: Huffman;
  ac?: Huffman;
  readonly td: number;
  readonly ta: number;
}

interface Scan {
  readonly components: Component[];
  readonly parts: ScanComponent[];
  readonly ss: number;
  readonly se: number;
  readonly ah: number;
  readonly al: number;
}

function readScan(d: Uint8Array, p: number, end: number, frame: Frame, fail: Fail): Scan {
  const count = d[p];
  if (count < 1 || count > 4 || end - p < 4 + 2 * count) {
    fail("corrupt JPEG data (bad scan header)");
  }
  const parts: ScanComponent[] = [];
  for (let i = 0; i < count; i++) {
    const id = d[p + 1 + 2 * i], tables = d[p + 2 + 2 * i];
    const component = frame.components.find((c) => c.id === id);
    if (!component) fail(`corrupt JPEG data (scan names unknown component ${id})`);
    if (parts.some((s) => s.component === component)) {
      fail(`corrupt JPEG data (scan names component ${id} twice)`);
    }
    parts.push({ component, td: tables >> 4, ta: tables & 15 });
  }
  const q = p + 1 + 2 * count;
  const scan = {
    components: parts.map((s) => s.component),
    parts,
    ss: d[q],
    se: d[q + 1],
    ah: d[q + 2] >> 4,
    al: d[q + 2] & 15,
  };
  if (count > 1 && parts.reduce((n, s) => n + s.component.h * s.component.v, 0) > 10) {
    fail("corrupt JPEG data (sampling factors too large for an interleaved scan)");
  }
  if (frame.progressive) {
    // The same checks as jdphuff.c's start_pass_phuff_decoder.
    const dcBand = scan.ss === 0;
    const bad = (dcBand ? scan.se !== 0 : scan.ss > scan.se || scan.se > 63 || count !== 1) ||
      (scan.ah !== 0 && scan.al !== scan.ah - 1) || scan.al > 13;
    if (bad) {
      fail(
        `corrupt JPEG data (bad progressive scan: Ss=${scan.ss} Se=${scan.se} Ah=${scan.ah} Al=${scan.al})`,
      );
    }
  }
  return scan;
}

interface ScanContext {
  readonly dcTables: (Huffman | undefined)[];
  readonly acTables: (Huffman | undefined)[];
  readonly restartInterval: number;
  readonly fail: Fail;
}

/** Huffman-coded data, read the way jdhuff.c reads it: a marker or the end of the data gives
 * zero bits, so that a decoder which reads past them can be caught afterwards. */
class BitReader {
  pos: number;
  buf = 0;
  bits = 0;
  /** Zero bits supplied after the data stopped. */
  padding = 0;
  stopped = false;
  atEnd = false;

  constructor(readonly data: Uint8Array, pos: number) {
    this.pos = pos;
  }

  fill(): void {
    const d = this.data;
    while (this.bits <= 24) {
      let byte = 0;
      if (!this.stopped) {
        const p = this.pos;
        if (p >= d.length) {
          this.stopped = this.atEnd = true;
        } else {
          byte = d[p];
          if (byte !== 0xff) {
            this.pos = p + 1;
          } else {
            let q = p + 1;
            while (q < d.length && d[q] === 0xff) q++;
            if (q < d.length && d[q] === 0) {
              this.pos = q + 1;
            } else {
              byte = 0;
              this.stopped = true;
              this.atEnd = q >= d.length;
            }
          }
        }
      }
      if (this.stopped) this.padding += 8;
      this.buf = (this.buf << 8) | byte;
      this.bits += 8;
    }
  }

  /** Whether more bits were taken than the data held. */
  overran(): boolean {
    return this.bits < this.padding;
  }

  reset(): void {
    this.buf = this.bits = this.padding = 0;
    this.stopped = this.atEnd = false;
  }

  bit(): number {
    if (this.bits < 1) this.fill();
    this.bits--;
    return (this.buf >>> this.bits) & 1;
  }

  receive(n: number): number {
    if (this.bits < n) this.fill();
    this.bits -= n;
    return (this.buf >>> this.bits) & ((1 << n) - 1);
  }

  /** `n` bits as a signed value (the spec's EXTEND). */
  receiveExtend(n: number): number {
    if (n === 0) return 0;
    const v = this.receive(n);
    return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
  }

  decode(table: Huffman): number {
    if (this.bits < 16) this.fill();
    const entry = table.lookup[(this.buf >>> (this.bits - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1)];
    if (entry !== 0) {
      this.bits -= entry >> 8;
      return entry & 0xff;
    }
    for (let length = LOOKAHEAD + 1; length <= 16; length++) {
      const code = (this.buf >>> (this.bits - length)) & ((1 << length) - 1);
      if (code <= table.maxCode[length]) {
        this.bits -= length;
        return table.values[table.valueOffset[length] + code];
      }
    }
    return -1;
  }
}

/** Decode one scan; returns the position just past its entropy-coded data. */
function decodeScan(
  d: Uint8Array,
  start: number,
  frame: Frame,
  scan: Scan,
  context: ScanContext,
): number {
  const { fail, restartInterval } = context;
  const progressive = frame.progressive;
  const dcBand = scan.ss === 0;
  for (const part of scan.parts) {
    const needDc = !progressive || (dcBand && scan.ah === 0);
    const needAc = !progressive || !dcBand;
    if (needDc) part.dc = table(context.dcTables, false, part.td, fail);
    if (needAc) part.ac = table(context.acTables, true, part.ta, fail);
  }
  const reader = new BitReader(d, start);
  const block = new Int16Array(64);
  const workspace = new Int32Array(64);
  const state = { eobrun: 0 };
  const parts = scan.parts;
  const single = parts.length === 1;
  const total = single
    ? parts[0].component.blocksPerLine * parts[0].component.blocksPerColumn
    : frame.mcusPerLine * frame.mcusPerColumn;
  const perLine = single ? parts[0].component.blocksPerLine : frame.mcusPerLine;
  for (const c of scan.components) c.pred = 0;

  const decodeBlock = (part: ScanComponent, row: number, col: number) => {
    const c = part.component;
    if (!progressive) {
      block.fill(0);
      decodeSequential(reader, part, block, fail);
      const stride = c.paddedBlocksPerLine * 8;
      idctIslow(block, 0, c.quant!, c.plane, row * 8 * stride + col * 8, stride, workspace);
      return;
    }
    const coefficients = c.coefficients!;
    const at = (row * c.paddedBlocksPerLine + col) * 64;
    if (dcBand) {
      if (scan.ah === 0) {
        const t = reader.decode(part.dc!);
        if (t < 0) fail("corrupt JPEG data (bad Huffman code)");
        c.pred += reader.receiveExtend(t);
        coefficients[at] = c.pred << scan.al;
      } else if (reader.bit()) {
        coefficients[at] |= 1 << scan.al;
      }
    } else if (scan.ah === 0) {
      decodeAcFirst(reader, part.ac!, coefficients, at, scan, state, fail);
    } else {
      decodeAcRefine(reader, part.ac!, coefficients, at, scan, state, fail);
    }
  };

  for (let mcu = 0; mcu < total; mcu++) {
    if (restartInterval > 0 && mcu > 0 && mcu % restartInterval === 0) {
      checkOverrun(reader, fail);
      const expected = 0xd0 + ((mcu / restartInterval - 1) & 7);
      const at = nextMarker(d, reader.pos);
      if (at < 0) fail("corrupt JPEG data (truncated: no end-of-image marker)");
      if (d[at] !== expected) {
        fail(
          `corrupt JPEG data (expected restart marker RST${expected - 0xd0}, found 0xFF${
            hex(d[at])
          })`,
        );
      }
      reader.pos = at + 1;
      reader.reset();
      for (const c of scan.components) c.pred = 0;
      state.eobrun = 0;
    }
    const my = (mcu / perLine) | 0, mx = mcu - my * perLine;
    if (single) {
      decodeBlock(parts[0], my, mx);
    } else {
      for (const part of parts) {
        const c = part.component;
        for (let v = 0; v < c.v; v++) {
          for (let h = 0; h < c.h; h++) decodeBlock(part, my * c.v + v, mx * c.h + h);
        }
      }
    }
    if (reader.padding > 0) checkOverrun(reader, fail);
  }
  checkOverrun(reader, fail);
  // Bits left in the last byte are padding; anything up to the next marker libjpeg skips too.
  return reader.pos;
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

function table(
  tables: (Huffman | undefined)[],
  ac: boolean,
  id: number,
  fail: Fail,
): Huffman {
  if (id > 3) fail(`corrupt JPEG data (Huffman table ${id})`);
  const found = tables[id];
  if (found) return found;
  if (id > 1) fail(`corrupt JPEG data (Huffman table ${id} is not defined)`);
  return (tables[id] = standardTable(ac, id, fail));
}

function checkOverrun(reader: BitReader, fail: Fail): void {
  if (!reader.overran()) return;
  if (reader.atEnd) fail("corrupt JPEG data (truncated: no end-of-image marker)");
  fail("corrupt JPEG data (scan data ends early)");
}

function decodeSequential(reader: BitReader, part: ScanComponent, block: Int16Array, fail: Fail) {
  const c = part.component;
  const t = reader.decode(part.dc!);
  if (t < 0) fail("corrupt JPEG data (bad Huffman code)");
  c.pred += reader.receiveExtend(t);
  block[0] = c.pred;
  const ac = part.ac!;
  for (let k = 1; k < 64; k++) {
    const rs = reader.decode(ac);
    if (rs < 0) fail("corrupt JPEG data (bad Huffman code)");
    const s = rs & 15, r = rs >> 4;
    if (s === 0) {
      if (r !== 15) break;
      k += 15;
      continue;
    }
    k += r;
    if (k > 63) fail("corrupt JPEG data (coefficient index past 63)");
    block[NATURAL_ORDER[k]] = reader.receiveExtend(s);
  }
}

function decodeAcFirst(
  reader: BitReader,
  ac: Huffman,
  coefficients: Int16Array,
  at: number,
  scan: Scan,
  state: { eobrun: number },
  fail: Fail,
): void {
  if (state.eobrun > 0) {
    state.eobrun--;
    return;
  }
  const { se, al } = scan;
  for (let k = scan.ss; k <= se; k++) {
    const rs = reader.decode(ac);
    if (rs < 0) fail("corrupt JPEG data (bad Huffman code)");
    const s = rs & 15, r = rs >> 4;
    if (s === 0) {
      if (r < 15) {
        state.eobrun = (1 << r) - 1;
        if (r > 0) state.eobrun += reader.receive(r);
        break;
      }
      k += 15;
      continue;
    }
    k += r;
    if (k > se) fail("corrupt JPEG data (coefficient index past the end of the band)");
    coefficients[at + NATURAL_ORDER[k]] = reader.receiveExtend(s) * (1 << al);
  }
}

function decodeAcRefine(
  reader: BitReader,
  ac: Huffman,
  coefficients: Int16Array,
  at: number,
  scan: Scan,
  state: { eobrun: number },
  fail: Fail,
): void {
  const { se } = scan;
  const p1 = 1 << scan.al, m1 = -1 << scan.al;
  let k = scan.ss;
  if (state.eobrun === 0) {
    for (; k <= se; k++) {
      const rs = reader.decode(ac);
      if (rs < 0) fail("corrupt JPEG data (bad Huffman code)");
      let s = rs & 15, r = rs >> 4;
      if (s !== 0) {
        if (s !== 1) fail("corrupt JPEG data (bad refinement coefficient size)");
        s = reader.bit() ? p1 : m1;
      } else if (r !== 15) {
        state.eobrun = 1 << r;
        if (r > 0) state.eobrun += reader.receive(r);
        break;
      }
      // Skip r zero coefficients, refining the non-zero ones passed on the way.
      for (; k <= se; k++) {
        const z = at + NATURAL_ORDER[k];
        const coef = coefficients[z];
        if (coef !== 0) {
          if (reader.bit() && (coef & p1) === 0) {
            coefficients[z] = coef >= 0 ? coef + p1 : coef + m1;
          }
        } else if (--r < 0) {
          break;
        }
      }
      if (s !== 0) {
        if (k > se) fail("corrupt JPEG data (coefficient index past the end of the band)");
        coefficients[at + NATURAL_ORDER[k]] = s;
      }
    }
  }
  if (state.eobrun > 0) {
    for (; k <= se; k++) {
      const z = at + NATURAL_ORDER[k];
      const coef = coefficients[z];
      if (coef !== 0 && reader.bit() && (coef & p1) === 0) {
        coefficients[z] = coef >= 0 ? coef + p1 : coef + m1;
      }
    }
    state.eobrun--;
  }
}

function idctComponent(c: Component): void {
  const stride = c.paddedBlocksPerLine * 8;
  const workspace = new Int32Array(64);
  const coefficients = c.coefficients!, quant = c.quant!;
  for (let row = 0; row < c.blocksPerColumn; row++) {
    for (let col = 0; col < c.blocksPerLine; col++) {
      const at = (row * c.paddedBlocksPerLine + col) * 64;
      idctIslow(coefficients, at, quant, c.plane, row * 8 * stride + col * 8, stride, workspace);
    }
  }
}

// --- inverse DCT -------------------------------------------------------------------------------

// jidctint.c's constants, FIX(x) = round(x * 2^13), combined the way libjpeg-turbo's SIMD code
// (jidctint-sse2.asm, jidctint-avx2.asm) pairs them for its 16x16->32-bit multiply-adds.
const F_0_298 = 2446;
const F_0_390 = 3196;
const F_0_541 = 4433;
const F_0_765 = 6270;
const F_0_899 = 7373;
const F_1_175 = 9633;
const F_1_501 = 12299;
const F_1_847 = 15137;
const F_1_961 = 16069;
const F_2_053 = 16819;
const F_2_562 = 20995;
const F_3_072 = 25172;
const E_TMP3_2 = F_0_541 + F_0_765;
const E_TMP2_6 = F_0_541 - F_1_847;
const O_Z3_3 = F_1_175 - F_1_961;
const O_Z4_4 = F_1_175 - F_0_390;
const O_TMP0_7 = F_0_298 - F_0_899;
const O_TMP3_1 = F_1_501 - F_0_899;
const O_TMP1_5 = F_2_053 - F_2_562;
const O_TMP2_3 = F_3_072 - F_2_562;

/**
 * Dequantize and inverse-DCT one 8x8 block (coefficients in natural order at `src[at..]`) into
 * `out`, as libjpeg-turbo's `jsimd_idct_islow`. Sums are exact in doubles and reduced mod 2^32
 * by the shifts, which is what 32-bit lanes do; `s16` marks the places the SIMD code works in
 * 16-bit lanes. The Uint8ClampedArray store is the final saturation to 0–255.
 */
function idctIslow(
  src: Int16Array,
  at: number,
  quant: Int16Array,
  out: Uint8ClampedArray,
  outAt: number,
  stride: number,
  ws: Int32Array,
): void {
  let acZero = true;
  for (let i = at + 8; i < at + 64; i++) {
    if (src[i] !== 0) {
      acZero = false;
      break;
    }
  }
  if (acZero) {
    // The SIMD code's whole-block shortcut: DC << 2 in a 16-bit lane, without saturation.
    for (let c = 0; c < 8; c++) {
      const dc = (Math.imul(src[at + c], quant[c]) << 18) >> 16;
      ws[c] =
        ws[c + 8] =
        ws[c + 16] =
        ws[c + 24] =
        ws[c + 32] =
        ws[c + 40] =
        ws[c + 48] =
        ws[c + 56] =
          dc;
    }
  } else {
    for (let c = 0; c < 8; c++) {
      const i0 = s16(Math.imul(src[at + c], quant[c]));
      const i1 = s16(Math.imul(src[at + c + 8], quant[c + 8]));
      const i2 = s16(Math.imul(src[at + c + 16], quant[c + 16]));
      const i3 = s16(Math.imul(src[at + c + 24], quant[c + 24]));
      const i4 = s16(Math.imul(src[at + c + 32], quant[c + 32]));
      const i5 = s16(Math.imul(src[at + c + 40], quant[c + 40]));
      const i6 = s16(Math.imul(src[at + c + 48], quant[c + 48]));
      const i7 = s16(Math.imul(src[at + c + 56], quant[c + 56]));
      if ((i1 | i2 | i3 | i4 | i5 | i6 | i7) === 0) {
        const dc = sat16(i0 * 4);
        ws[c] =
          ws[c + 8] =
          ws[c + 16] =
          ws[c + 24] =
          ws[c + 32] =
          ws[c + 40] =
          ws[c + 48] =
          ws[c + 56] =
            dc;
        continue;
      }
      const tmp3 = i2 * E_TMP3_2 + i6 * F_0_541;
      const tmp2 = i2 * F_0_541 + i6 * E_TMP2_6;
      const a = s16(i0 + i4) * 8192, b = s16(i0 - i4) * 8192;
      const tmp10 = a + tmp3, tmp13 = a - tmp3, tmp11 = b + tmp2, tmp12 = b - tmp2;
      const z3 = s16(i3 + i7), z4 = s16(i1 + i5);
      const z3p = z3 * O_Z3_3 + z4 * F_1_175;
      const z4p = z3 * F_1_175 + z4 * O_Z4_4;
      const t0 = i7 * O_TMP0_7 - i1 * F_0_899 + z3p;
      const t3 = -i7 * F_0_899 + i1 * O_TMP3_1 + z4p;
      const t1 = i5 * O_TMP1_5 - i3 * F_2_562 + z4p;
      const t2 = -i5 * F_2_562 + i3 * O_TMP2_3 + z3p;
      ws[c] = sat16((tmp10 + t3 + 1024) >> 11);
      ws[c + 56] = sat16((tmp10 - t3 + 1024) >> 11);
      ws[c + 8] = sat16((tmp11 + t2 + 1024) >> 11);
      ws[c + 48] = sat16((tmp11 - t2 + 1024) >> 11);
      ws[c + 16] = sat16((tmp12 + t1 + 1024) >> 11);
      ws[c + 40] = sat16((tmp12 - t1 + 1024) >> 11);
      ws[c + 24] = sat16((tmp13 + t0 + 1024) >> 11);
      ws[c + 32] = sat16((tmp13 - t0 + 1024) >> 11);
    }
  }
  for (let r = 0; r < 64; r += 8) {
    const i0 = ws[r], i1 = ws[r + 1], i2 = ws[r + 2], i3 = ws[r + 3];
    const i4 = ws[r + 4], i5 = ws[r + 5], i6 = ws[r + 6], i7 = ws[r + 7];
    const o = outAt + (r >> 3) * stride;
    if ((i1 | i2 | i3 | i4 | i5 | i6 | i7) === 0) {
      const v = ((i0 + 16) >> 5) + 128;
      out[o] =
        out[o + 1] =
        out[o + 2] =
        out[o + 3] =
        out[o + 4] =
        out[o + 5] =
        out[o + 6] =
        out[o + 7] =
          v;
      continue;
    }
    const tmp3 = i2 * E_TMP3_2 + i6 * F_0_541;
    const tmp2 = i2 * F_0_541 + i6 * E_TMP2_6;
    const a = s16(i0 + i4) * 8192, b = s16(i0 - i4) * 8192;
    const tmp10 = a + tmp3, tmp13 = a - tmp3, tmp11 = b + tmp2, tmp12 = b - tmp2;
    const z3 = s16(i3 + i7), z4 = s16(i1 + i5);
    const z3p = z3 * O_Z3_3 + z4 * F_1_175;
    const z4p = z3 * F_1_175 + z4 * O_Z4_4;
    const t0 = i7 * O_TMP0_7 - i1 * F_0_899 + z3p;
    const t3 = -i7 * F_0_899 + i1 * O_TMP3_1 + z4p;
    const t1 = i5 * O_TMP1_5 - i3 * F_2_562 + z4p;
    const t2 = -i5 * F_2_562 + i3 * O_TMP2_3 + z3p;
    out[o] = ((tmp10 + t3 + 131072) >> 18) + 128;
    out[o + 7] = ((tmp10 - t3 + 131072) >> 18) + 128;
    out[o + 1] = ((tmp11 + t2 + 131072) >> 18) + 128;
    out[o + 6] = ((tmp11 - t2 + 131072) >> 18) + 128;
    out[o + 2] = ((tmp12 + t1 + 131072) >> 18) + 128;
    out[o + 5] = ((tmp12 - t1 + 131072) >> 18) + 128;
    out[o + 3] = ((tmp13 + t0 + 131072) >> 18) + 128;
    out[o + 4] = ((tmp13 - t0 + 131072) >> 18) + 128;
  }
}

function s16(x: number): number {
  return (x << 16) >> 16;
}

function sat16(x: number): number {
  return x < -32768 ? -32768 : x > 32767 ? 32767 : x;
}

// --- upsampling and colour conversion ----------------------------------------------------------

/** How one component is brought to full size (jdsample.c's choice). */
type Upsampler = "full" | "h2v1" | "h1v2" | "h2v2" | "box";

function upsampler(frame: Frame, c: Component): Upsampler {
  if (frame.components.length === 1) return "full";
  const hr = frame.maxH / c.h, vr = frame.maxV / c.v;
  if (hr === 1 && vr === 1) return "full";
  // libjpeg filters only 2:1 ratios, and sideways only when there are more than 2 samples.
  if (hr === 2 && vr === 1 && c.dw > 2) return "h2v1";
  if (hr === 1 && vr === 2) return "h1v2";
  if (hr === 2 && vr === 2 && c.dw > 2) return "h2v2";
  return "box";
}

// jdcolor.c's tables: 16-bit fixed point, each term rounded once.
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
const CR_G = new Int32Array(256);
const CB_G = new Int32Array(256);
/** libjpeg's range limit, offset by 256: `LIMIT[x + 256]` is `x` clamped to 0–255. */
const LIMIT = new Uint8Array(768);
{
  const fix = (x: number) => Math.trunc(x * 65536 + 0.5);
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    CR_R[i] = (fix(1.402) * x + 32768) >> 16;
    CB_B[i] = (fix(1.772) * x + 32768) >> 16;
    CR_G[i] = -fix(0.71414) * x;
    CB_G[i] = -fix(0.34414) * x + 32768;
  }
  for (let i = 0; i < 768; i++) LIMIT[i] = i < 256 ? 0 : i > 511 ? 255 : i - 256;
}

function toRgba(frame: Frame, space: ColourSpace): RgbaImage {
  const { width, height, components } = frame;
  const n = components.length;
  const kinds = components.map((c) => upsampler(frame, c));
  const rows = components.map((c, k) =>
    kinds[k] === "full" ? c.plane : new Uint8ClampedArray((frame.maxH / c.h) * c.dw + 8)
  );
  const rowAt = new Int32Array(n);
  const data = new Uint8ClampedArray(width * height * 4);
  // Every value stored is already in 0-255, so a plain byte view skips the clamping stores.
  const out = new Uint8Array(data.buffer);
  for (let y = 0; y < height; y++) {
    for (let k = 0; k < n; k++) {
      const c = components[k];
      const stride = c.paddedBlocksPerLine * 8;
      const near = y >> 1, below = (y & 1) === 1;
      const far = below ? Math.min(near + 1, c.dh - 1) : Math.max(near - 1, 0);
      const kind = kinds[k];
      if (kind === "full") rowAt[k] = y * stride;
      else if (kind === "h2v1") fancyH2V1(c.plane, y * stride, c.dw, rows[k]);
      else if (kind === "h2v2") fancyH2V2(c.plane, near * stride, far * stride, c.dw, rows[k]);
      else if (kind === "h1v2") {
        fancyH1V2(c.plane, near * stride, far * stride, below ? 2 : 1, width, rows[k]);
      } else {
        const hr = frame.maxH / c.h, vr = frame.maxV / c.v;
        replicate(c.plane, ((y / vr) | 0) * stride, hr, width, rows[k]);
      }
    }
    const o = y * width * 4;
    if (space === "gray") grayRow(rows[0], rowAt[0], out, o, width);
    else if (space === "ycc") yccRow(rows, rowAt, out, o, width);
    else if (space === "rgb") rgbRow(rows, rowAt, out, o, width);
    else cmykRow(rows, rowAt, space === "ycck", out, o, width);
  }
  return { width, height, data };
}

// libjpeg's triangle filters (jdsample.c). Sideways, output pair 2x, 2x+1 takes 3/4 of sample
// x and 1/4 of the sample before or after it, the edge samples repeated: that is what the C
// code's special first and last columns, and the SIMD code's dummy column, come to.

/** `h2v1_fancy_upsample`: biases 1 and 2, `>> 2`. */
function fancyH2V1(plane: Uint8ClampedArray, at: number, dw: number, row: Uint8ClampedArray) {
  let prev = plane[at], here = prev;
  for (let x = 0; x < dw; x++) {
    const next = x + 1 < dw ? plane[at + x + 1] : here;
    row[2 * x] = (here * 3 + prev + 1) >> 2;
    row[2 * x + 1] = (here * 3 + next + 2) >> 2;
    prev = here;
    here = next;
  }
}

/** `h2v2_fancy_upsample`: columns summed 3 near + 1 far row, then biases 8 and 7, `>> 4`. */
function fancyH2V2(
  plane: Uint8ClampedArray,
  near: number,
  far: number,
  dw: number,
  row: Uint8ClampedArray,
) {
  let prev = plane[near] * 3 + plane[far], here = prev;
  for (let x = 0; x < dw; x++) {
    const next = x + 1 < dw ? plane[near + x + 1] * 3 + plane[far + x + 1] : here;
    row[2 * x] = (here * 3 + prev + 8) >> 4;
    row[2 * x + 1] = (here * 3 + next + 7) >> 4;
    prev = here;
    here = next;
  }
}

/** `h1v2_fancy_upsample`: 3 near + 1 far row, bias 1 above and 2 below, `>> 2`. */
function fancyH1V2(
  plane: Uint8ClampedArray,
  near: number,
  far: number,
  bias: number,
  width: number,
  row: Uint8ClampedArray,
) {
  for (let x = 0; x < width; x++) row[x] = (plane[near + x] * 3 + plane[far + x] + bias) >> 2;
}

/** `int_upsample` and the plain 2:1 cases: each sample repeated `hr` times. */
function replicate(
  plane: Uint8ClampedArray,
  at: number,
  hr: number,
  width: number,
  row: Uint8ClampedArray,
) {
  for (let x = 0; x < width; x++) row[x] = plane[at + ((x / hr) | 0)];
}

function grayRow(g: Uint8ClampedArray, at: number, out: Uint8Array, o: number, width: number) {
  for (let x = 0; x < width; x++, o += 4) {
    out[o] = out[o + 1] = out[o + 2] = g[at + x];
    out[o + 3] = 255;
  }
}

function rgbRow(
  rows: Uint8ClampedArray[],
  rowAt: Int32Array,
  out: Uint8Array,
  o: number,
  width: number,
) {
  const r = rows[0], r0 = rowAt[0], g = rows[1], g0 = rowAt[1], b = rows[2], b0 = rowAt[2];
  for (let x = 0; x < width; x++, o += 4) {
    out[o] = r[r0 + x];
    out[o + 1] = g[g0 + x];
    out[o + 2] = b[b0 + x];
    out[o + 3] = 255;
  }
}

/** jdcolor.c `ycc_rgb_convert`. */
function yccRow(
  rows: Uint8ClampedArray[],
  rowAt: Int32Array,
  out: Uint8Array,
  o: number,
  width: number,
) {
  const ys = rows[0], y0 = rowAt[0], cbs = rows[1], cb0 = rowAt[1], crs = rows[2], cr0 = rowAt[2];
  for (let x = 0; x < width; x++, o += 4) {
    const y = ys[y0 + x] + 256, cb = cbs[cb0 + x], cr = crs[cr0 + x];
    out[o] = LIMIT[y + CR_R[cr]];
    out[o + 1] = LIMIT[y + ((CB_G[cb] + CR_G[cr]) >> 16)];
    out[o + 2] = LIMIT[y + CB_B[cb]];
    out[o + 3] = 255;
  }
}

/**
 * Four components as libjpeg hands them to PIL (YCCK first through jdcolor.c
 * `ycck_cmyk_convert`), read by PIL as Adobe's inverted "CMYK;I" and converted by its
 * `cmyk2rgb`.
 */
function cmykRow(
  rows: Uint8ClampedArray[],
  rowAt: Int32Array,
  ycck: boolean,
  out: Uint8Array,
  o: number,
  width: number,
) {
  const a = rows[0], a0 = rowAt[0], b = rows[1], b0 = rowAt[1];
  const c = rows[2], c0 = rowAt[2], k = rows[3], k0 = rowAt[3];
  for (let x = 0; x < width; x++, o += 4) {
    let cyan = a[a0 + x], magenta = b[b0 + x], yellow = c[c0 + x];
    if (ycck) {
      const y = cyan + 256, cb = magenta, cr = yellow;
      cyan = 255 - LIMIT[y + CR_R[cr]];
      magenta = 255 - LIMIT[y + ((CB_G[cb] + CR_G[cr]) >> 16)];
      yellow = 255 - LIMIT[y + CB_B[cb]];
    }
    const black = k[k0 + x];
    out[o] = black - mulDiv255(255 - cyan, black);
    out[o + 1] = black - mulDiv255(255 - magenta, black);
    out[o + 2] = black - mulDiv255(255 - yellow, black);
    out[o + 3] = 255;
  }
}

/** PIL's MULDIV255: a * b / 255, rounded. */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}
