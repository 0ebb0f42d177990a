/**
 * Fetch model bytes from a path or an https URL, with an optional sha256 pin and a local cache.
 *
 * @module
 */
import { LanternError } from "../../pipeline/errors.ts";

/** Options for {@linkcode loadModelBytes}. */
export interface ModelSourceOptions {
  /** Directory relative paths are resolved against. */
  baseDir?: string;
  /** Expected sha256 (hex); the bytes are rejected when they differ. */
  sha256?: string;
  /** Cache directory for downloads (default `$LANTERN_CACHE` or `~/.cache/lantern/models`). */
  cacheDir?: string;
  /** `false` fetches URLs into memory only, never reading or writing the cache (default true). */
  cache?: boolean;
  /** Passed to `fetch` for URLs. */
  signal?: AbortSignal;
}

/** Hex sha256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether `source` is a URL rather than a file path. */
export function isUrl(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source);
}

/** Resolve a path against a base directory (absolute paths and URLs are kept). */
export function resolvePath(path: string, baseDir = "."): string {
  if (isUrl(path) || path.startsWith("/")) return path;
  return `${baseDir.replace(/\/+$/, "")}/${path}`.replace(/^\.\//, "");
}

/** https anywhere; plain http only on loopback (local model servers and tests). */
export function isAllowedUrl(source: string): boolean {
  const url = new URL(source);
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" &&
    ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}

function defaultCacheDir(): string {
  const env = Deno.env.get("LANTERN_CACHE");
  if (env) return env;
  const home = Deno.env.get("HOME") ?? ".";
  return `${home}/.cache/lantern/models`;
}

/** Load model bytes from `source` (path or https URL), verifying the sha256 pin if given. */
export async function loadModelBytes(
  source: string,
  options: ModelSourceOptions = {},
): Promise<Uint8Array> {
  const pin = options.sha256?.toLowerCase();
  let bytes: Uint8Array;
  if (isUrl(source)) {
    if (!isAllowedUrl(source)) {
      throw new LanternError(
        `Cannot load model "${source}": only https:// URLs (or http:// on loopback) are allowed`,
      );
    }
    // `cache: false` keeps it in memory: no Deno API is touched, so edge runtimes load URLs too.
    let cacheFile: string | undefined;
    if (options.cache !== false) {
      const key = pin ?? await sha256Hex(new TextEncoder().encode(source));
      cacheFile = `${options.cacheDir ?? defaultCacheDir()}/${key}.onnx`;
    }
    return await fetchPinned(source, {
      what: `model "${source}"`,
      sha256: pin,
      cacheFile,
      signal: options.signal,
    });
  }
  const path = resolvePath(source, options.baseDir);
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new LanternError(`Cannot load model "${path}": file not found`);
    }
    throw new LanternError(`Cannot load model "${path}": ${(e as Error).message}`);
  }
  await checkPin(`model "${path}"`, bytes, { sha256: pin });
  return bytes;
}

/**
 * The bytes at `url`, refused unless their sha256 is `options.sha256` (when given). With
 * `cacheFile`, a copy there is used if its hash matches (any copy without a pin), and a download
 * is written there atomically. `what` names the thing in errors (`model "m.onnx"`).
 */
export async function fetchPinned(
  url: string,
  options: { what: string; sha256?: string; cacheFile?: string; signal?: AbortSignal },
): Promise<Uint8Array> {
  const { what, cacheFile } = options;
  const pin = options.sha256?.toLowerCase();
  if (cacheFile) {
    try {
      const bytes = await Deno.readFile(cacheFile);
      if (!pin || await sha256Hex(bytes) === pin) return bytes;
    } catch { /* not cached yet */ }
  }
  let response: Response;
  try {
    response = await fetch(url, { signal: options.signal });
  } catch (e) {
    throw new LanternError(`Cannot download ${what}: ${(e as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new LanternError(`Cannot download ${what}: HTTP ${response.status}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  await checkPin(what, bytes, { sha256: pin });
  if (cacheFile) {
    await Deno.mkdir(cacheFile.slice(0, cacheFile.lastIndexOf("/")) || ".", { recursive: true });
    const tmp = `${cacheFile}.${crypto.randomUUID()}.tmp`;
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, cacheFile);
  }
  return bytes;
}

/**
 * Refuse `bytes` whose sha256 differs from `options.sha256` (hex, any case; no pin passes
 * anything). `what` names the thing in the error (`model "m.onnx"`, `plugin "p"`).
 */
export async function checkPin(
  what: string,
  bytes: Uint8Array,
  options: { sha256?: string } = {},
): Promise<void> {
  const pin = options.sha256?.toLowerCase();
  if (!pin) return;
  const got = await sha256Hex(bytes);
  if (got !== pin) throw new LanternError(`Cannot load ${what}: sha256 is ${got}, expected ${pin}`);
}

/** Read a labels file: one class name per line; blank trailing lines are dropped. */
export async function loadLabels(path: string, baseDir?: string): Promise<string[]> {
  const full = resolvePath(path, baseDir);
  let text: string;
  try {
    text = await Deno.readTextFile(full);
  } catch {
    throw new LanternError(`Cannot read labels "${full}": file not found`);
  }
  return text.replace(/\r/g, "").replace(/\n+$/, "").split("\n");
}

/** Look for a labels file beside a model: `<stem>_labels.txt`, `labels.txt`, `*labels*.txt`. */
export async function findLabels(modelPath: string): Promise<string[] | undefined> {
  if (isUrl(modelPath)) return undefined;
  const slash = modelPath.lastIndexOf("/");
  const dir = slash >= 0 ? modelPath.slice(0, slash) : ".";
  const stem = modelPath.slice(slash + 1).replace(/\.onnx$/i, "");
  const candidates = [`${stem}_labels.txt`, "labels.txt"];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && /labels.*\.txt$/i.test(entry.name)) candidates.push(entry.name);
    }
  } catch {
    return undefined;
  }
  for (const name of candidates) {
    try {
      return await loadLabels(`${dir}/${name}`);
    } catch { /* try the next */ }
  }
  return undefined;
}
