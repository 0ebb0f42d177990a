/**
 * Path helpers that need no JSR packages.
 *
 * @module
 */

/**
 * The absolute, normalised form of an absolute or cwd-relative path: no `.`, `..`, empty
 * segments or trailing slash, so it compares equal to the paths `Deno.watchFs` reports.
 */
export function absolute(path: string): string {
  const full = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const parts: string[] = [];
  for (const part of full.split("/")) {
    if (part === "..") parts.pop();
    else if (part && part !== ".") parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** A `file://` URL for an absolute or cwd-relative path. */
export function toFileUrl(path: string): URL {
  // Keep a trailing slash: it makes a directory URL, which relative specifiers resolve inside.
  const abs = absolute(path) + (path.endsWith("/") ? "/" : "");
  return new URL(`file://${abs.split("/").map(encodeURIComponent).join("/")}`);
}

/** Directory part of a path (`.` when there is none). */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : i === 0 ? "/" : ".";
}

/** File name without directory and extension. */
export function stem(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

/**
 * Write files under `dir` all-or-nothing: each goes to a temporary name first, and only when every
 * file is written are they renamed into place.
 */
export async function writeOutputs(
  dir: string,
  files: readonly { path: string; bytes: Uint8Array }[],
): Promise<string[]> {
  const tmpTag = `.lantern-${crypto.randomUUID().slice(0, 8)}.tmp`;
  const staged: [string, string][] = [];
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new Error(`Cannot write outputs: two renders produced "${f.path}"`);
    seen.add(f.path);
  }
  try {
    for (const f of files) {
      if (f.path.split("/").includes("..") || f.path.startsWith("/")) {
        throw new Error(
          `Cannot write "${f.path}": output paths must stay inside the output directory`,
        );
      }
      const target = `${dir}/${f.path}`;
      await Deno.mkdir(dirname(target), { recursive: true });
      await Deno.writeFile(target + tmpTag, f.bytes);
      staged.push([target + tmpTag, target]);
    }
    for (const [tmp, target] of staged) await Deno.rename(tmp, target);
  } catch (e) {
    for (const [tmp] of staged) await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return staged.map(([, target]) => target);
}
