/**
 * File globs (`*`, `?`, `**`, `[abc]`, `{a,b}`) for input lists, without JSR's `@std/fs`.
 *
 * @module
 */

/** Whether `pattern` has glob syntax. */
export function isGlob(pattern: string): boolean {
  return /[*?[{]/.test(pattern);
}

/** Translate one glob path segment (or `**`) into a regular expression. */
export function globToRegExp(segment: string): RegExp {
  let re = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = segment.indexOf("]", i);
      if (end < 0) re += "\\[";
      else {
        re += `[${segment.slice(i + 1, end).replace(/^!/, "^")}]`;
        i = end;
      }
    } else if (c === "{") {
      const end = segment.indexOf("}", i);
      if (end < 0) re += "\\{";
      else {
        re += `(?:${segment.slice(i + 1, end).split(",").map(escape).join("|")})`;
        i = end;
      }
    } else re += escape(c);
  }
  return new RegExp(`^${re}$`);
}

function escape(s: string): string {
  return s.replace(/[.+^${}()|[\]\\*?]/g, "\\$&");
}

/** Expand a glob into matching file paths, sorted; a plain path is returned as is. */
export async function expandGlob(pattern: string): Promise<string[]> {
  if (!isGlob(pattern)) return [pattern];
  const absolute = pattern.startsWith("/");
  const parts = pattern.split("/").filter((p, i) => p !== "" || i === 0);
  const firstGlob = parts.findIndex((p) => isGlob(p));
  const root = parts.slice(0, firstGlob).join("/") || (absolute ? "/" : ".");
  const out: string[] = [];
  await walk(root, parts.slice(firstGlob), out);
  return out.map((p) => p.replace(/^\.\//, "")).sort();
}

async function walk(dir: string, rest: string[], out: string[]): Promise<void> {
  if (rest.length === 0) return;
  const [head, ...tail] = rest;
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return;
  }
  const join = (name: string) => dir === "/" ? `/${name}` : `${dir}/${name}`;
  if (head === "**") {
    await walk(dir, tail, out);
    for (const e of entries) if (e.isDirectory) await walk(join(e.name), rest, out);
    return;
  }
  const re = globToRegExp(head);
  for (const e of entries) {
    if (!re.test(e.name) || e.name.startsWith(".") && !head.startsWith(".")) continue;
    if (tail.length === 0) {
      if (e.isFile) out.push(join(e.name));
    } else if (e.isDirectory) await walk(join(e.name), tail, out);
  }
}
