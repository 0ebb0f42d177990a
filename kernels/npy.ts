/**
 * NumPy `.npy` (format 1.0) reading and writing for float32 arrays, Web-standard only.
 *
 * @module
 */
import { type Tensor, tensor } from "./tensor.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** Encode a tensor as a little-endian float32 C-order `.npy` file. */
export function encodeNpy(t: Tensor): Uint8Array {
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(", ")})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  // Header length is padded so the data starts on a 64-byte boundary, ending with "\n".
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const headerBytes = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + headerBytes.length + t.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, headerBytes.length, true);
  out.set(headerBytes, 10);
  const body = new DataView(out.buffer, 10 + headerBytes.length);
  for (let i = 0; i < t.data.length; i++) body.setFloat32(i * 4, t.data[i], true);
  return out;
}

/** Decode a `.npy` file holding float32 (or float64, converted) C-order data. */
export function decodeNpy(bytes: Uint8Array, name = "array"): Tensor {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new Error(`Cannot read ${name}: not a .npy file (missing \\x93NUMPY magic)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) {
    throw new Error(`Cannot read ${name}: malformed .npy header ${JSON.stringify(header)}`);
  }
  if (fortran === "True") {
    throw new Error(`Cannot read ${name}: Fortran-order arrays are not supported, save C order`);
  }
  const dims = shapeText.split(",").map((s) => s.trim()).filter((s) => s).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const data = new Float32Array(n);
  const little = descr[0] !== ">";
  const kind = descr.slice(1);
  const width = kind === "f4" ? 4 : kind === "f8" ? 8 : 0;
  if (!width) {
    throw new Error(`Cannot read ${name}: dtype '${descr}' is not float32 or float64`);
  }
  if (bytes.length - dataStart < n * width) {
    throw new Error(
      `Cannot read ${name}: truncated, has ${bytes.length - dataStart} data bytes, needs ${
        n * width
      }`,
    );
  }
  for (let i = 0; i < n; i++) {
    const off = dataStart + i * width;
    data[i] = width === 4 ? view.getFloat32(off, little) : view.getFloat64(off, little);
  }
  return tensor(data, dims);
}
