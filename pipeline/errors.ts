/**
 * Errors that carry enough context to print as one helpful line.
 *
 * @module
 */

/** An error a user caused and can fix; the CLI prints its message alone, without a stack. */
export class LanternError extends Error {
  /** Make an error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "LanternError";
  }
}

/**
 * A bad value for one parameter of a plugin. `key` is the parameter's name, so the pipeline
 * runner can point at the YAML line that set it.
 */
export class ParamError extends LanternError {
  /** Make an error about parameter `key`. */
  constructor(readonly key: string, message: string) {
    super(message);
    this.name = "ParamError";
  }
}

/** Edit distance between two strings (Levenshtein), for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = new Array(b.length + 1).fill(0).map((_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** Up to `count` candidates closest to `name`, closest first. */
export function closestMatches(name: string, candidates: Iterable<string>, count = 3): string[] {
  return [...candidates]
    .map((c) => ({ c, d: editDistance(name.toLowerCase(), c.toLowerCase()) }))
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c))
    .slice(0, count)
    .map((x) => x.c);
}

/** `— did you mean 'a', 'b'?` or an empty string when there are no candidates. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const near = closestMatches(name, candidates);
  return near.length ? ` — did you mean ${near.map((n) => `'${n}'`).join(", ")}?` : "";
}

/** The first line of an error's message (or of `String(e)` for a non-Error): one-line reports. */
export function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}
