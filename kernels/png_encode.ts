/**
 * PNG encoding of RGBA pictures (pure JavaScript via `fast-png`), for renders. Web-standard only.
 *
 * @module
 */
import { encode } from "fast-png";
import type { RgbaImage } from "../pipeline/types.ts";

/** Options of {@linkcode encodePng}. */
export interface PngOptions {
  /** `tEXt` chunks to store, e.g. `{ Software: "Lantern" }`. */
  readonly text?: Readonly<Record<string, string>>;
}

/** Encode an 8-bit RGBA picture as a PNG file. */
export function encodePng(img: RgbaImage, options: PngOptions = {}): Uint8Array {
  const { width, height, data } = img;
  if (data.length !== width * height * 4) {
    throw new Error(
      `Cannot encode PNG: ${width}×${height} RGBA needs ${
        width * height * 4
      } bytes, got ${data.length}`,
    );
  }
  return encode({
    width,
    height,
    data,
    depth: 8,
    channels: 4,
    ...(options.text ? { text: { ...options.text } } : {}),
  });
}
