/**
 * Pipeline files: YAML parsed with `yaml`, validated with zod, errors reported as
 * `file:line key.path: message`, and `--set key.path=value` overrides.
 *
 * @module
 */
import { z } from "zod";
import { type Document, isMap, isSeq, LineCounter, parse as parseYaml, parseDocument } from "yaml";
import { firstLine, LanternError } from "./errors.ts";

/** One stage entry: a built-in `name` or a module `plugin`, plus the plugin's parameters. */
export const entrySchema = z.object({
  /** Built-in plugin name. */
  name: z.string().optional(),
  /** Path or URL of a module exporting a plugin. */
  plugin: z.string().optional(),
  /** Label used in output file names instead of the plugin name. */
  id: z.string().regex(/^[A-Za-z0-9_.+-]+$/, "use letters, digits, '_', '.', '+' or '-'")
    .optional(),
}).catchall(z.unknown());

/** A stage entry as written in YAML. */
export type Entry = z.infer<typeof entrySchema>;

/**
 * A plugin module a pipeline declares: a local `path` or an https `url` pinned by `sha256`, run
 * in-process when `trusted: true`, else in a sandboxed worker (`pipeline/sandbox.ts`). Stages then
 * use its plugins by `name:`. `trusted` must be written out for a path; a URL defaults to false.
 */
export const pluginModuleSchema = z.object({
  /** Module path, relative to the pipeline file. */
  path: z.string().optional(),
  /** Module URL (https, or http on loopback); needs `sha256`. */
  url: z.string().optional(),
  /** Hex sha256 of the module's bytes; the module is refused when it differs. */
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "expected 64 hex digits").optional(),
  /** Run in-process (true) or in a worker without permissions (false). */
  trusted: z.boolean().optional(),
  /** Sandboxed only: seconds one method run may take before its worker is stopped (600). */
  timeout_s: z.number().positive().optional(),
}).strict();

/** A plugin module entry as written in YAML. */
export type PluginModuleEntry = z.infer<typeof pluginModuleSchema>;

/** The top level of a pipeline file. */
export const pipelineSchema = z.object({
  /** Input files or globs, relative to the pipeline file (optional for `activation-max`). */
  inputs: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
  /** Output directory, relative to the current directory (default `out`). */
  out: z.string().optional(),
  /** Plugin modules the stages may use by name. */
  plugins: z.array(pluginModuleSchema).optional(),
  /** Preprocess stage (default: `image` with the preset that fits the model). */
  preprocess: entrySchema.optional(),
  /** Model stage. */
  model: entrySchema,
  /** Explanation methods, run in order. */
  methods: z.array(entrySchema).min(1),
  /** Outputs to render. */
  render: z.array(entrySchema).min(1),
}).strict();

/** A validated pipeline. */
export type PipelineConfig = z.infer<typeof pipelineSchema>;

/** Key path inside a pipeline document, e.g. `["methods", 0, "layer"]`. */
export type KeyPath = readonly (string | number)[];

/** Render a key path as `methods[0].layer`. */
export function formatPath(path: KeyPath): string {
  return path.map((k, i) => typeof k === "number" ? `[${k}]` : i === 0 ? k : `.${k}`).join("");
}

/** Parse `methods[0].layer` into `["methods", 0, "layer"]`. */
export function parsePath(text: string): (string | number)[] {
  const path: (string | number)[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    path.push(m[2] !== undefined ? Number(m[2]) : m[1]);
    consumed += m[0].length;
  }
  const dots = (text.match(/\./g) ?? []).length;
  if (!path.length || consumed + dots !== text.length) {
    throw new LanternError(
      `Cannot parse key path "${text}": expected a form like methods[0].target`,
    );
  }
  return path;
}

/** A parsed pipeline file that can say where each key is. */
export class PipelineSource {
  readonly #doc: Document;
  readonly #lines: LineCounter;
  /** File name used in messages. */
  readonly file: string;

  readonly #locate?: (path: KeyPath) => string;

  /**
   * Parse YAML `text`; syntax errors become one-line `file:line` errors. `locate`, when given,
   * names the origin of a key path instead of `file:line` (the CLI maps paths to its flags).
   */
  constructor(text: string, file: string, locate?: (path: KeyPath) => string) {
    this.file = file;
    this.#locate = locate;
    this.#lines = new LineCounter();
    this.#doc = parseDocument(text, { lineCounter: this.#lines, prettyErrors: false });
    const err = this.#doc.errors[0];
    if (err) {
      const line = this.#lines.linePos(err.pos[0]).line;
      const msg = firstLine(err).replace(/ at line \d+, column \d+:?$/, "");
      throw new LanternError(`${file}:${line} malformed YAML: ${msg}`);
    }
  }

  /** A source made from a plain object rather than a file (e.g. built from CLI flags). */
  static fromObject(
    value: Record<string, unknown>,
    locate: (path: KeyPath) => string,
  ): PipelineSource {
    return new PipelineSource(JSON.stringify(value), "command line", locate);
  }

  /** Override a value, as `--set methods[0].target=281` does (the value is parsed as YAML). */
  set(assignment: string): void {
    const eq = assignment.indexOf("=");
    if (eq <= 0) {
      throw new LanternError(`Cannot apply --set "${assignment}": expected key.path=value`);
    }
    const path = parsePath(assignment.slice(0, eq));
    let value: unknown;
    try {
      value = parseYaml(assignment.slice(eq + 1));
    } catch {
      value = assignment.slice(eq + 1);
    }
    this.#doc.setIn(path, value);
  }

  /** 1-based line of the value at `path`, or of its nearest existing parent. */
  line(path: KeyPath): number {
    for (let n = path.length; n >= 0; n--) {
      const node = this.#doc.getIn(path.slice(0, n), true) as
        | { range?: [number, number] }
        | undefined;
      if (node && typeof node === "object" && node.range) {
        return this.#lines.linePos(node.range[0]).line;
      }
      if (n === 0) {
        const contents = this.#doc.contents as { range?: [number, number] } | null;
        if (contents?.range) return this.#lines.linePos(contents.range[0]).line;
      }
    }
    return 1;
  }

  /** A one-line error for `path`: `file:line path: message`. */
  error(path: KeyPath, message: string): LanternError {
    if (this.#locate) return new LanternError(`${this.#locate(path)}: ${message}`);
    const where = path.length ? ` ${formatPath(path)}:` : "";
    return new LanternError(`${this.file}:${this.line(path)}${where} ${message}`);
  }

  /** The plain JavaScript value of the document. */
  toJS(): unknown {
    return this.#doc.toJS();
  }

  /** Validate against `pipelineSchema`, reporting the first problem with its line. */
  validate(): PipelineConfig {
    const raw = this.toJS();
    if (
      !raw || typeof raw !== "object" || isSeq(this.#doc.contents) || !isMap(this.#doc.contents)
    ) {
      throw this.error([], "expected a mapping with inputs, model, methods and render");
    }
    const parsed = pipelineSchema.safeParse(raw);
    if (!parsed.success) throw this.zodError(parsed.error, []);
    parsed.data.plugins?.forEach((p, i) => {
      const at = ["plugins", i];
      if (!p.path === !p.url) throw this.error(at, "give either path or url");
      if (p.url && !p.sha256) {
        throw this.error(at, "missing sha256: a plugin URL must be pinned by its hash");
      }
      if (p.path && p.trusted === undefined) {
        throw this.error(
          at,
          "missing trusted: say true to run it in-process, or false to run it sandboxed",
        );
      }
    });
    for (const [stage, entries] of Object.entries(parsed.data)) {
      if (stage === "plugins") continue;
      const list = Array.isArray(entries) ? entries : [entries];
      list.forEach((e, i) => {
        if (typeof e !== "object" || e === null) return;
        const at = Array.isArray(entries) ? [stage, i] : [stage];
        const entry = e as Entry;
        if (entry.name && entry.plugin) {
          throw this.error(at, "give either name or plugin, not both");
        }
        if (!entry.name && !entry.plugin && stage !== "preprocess" && stage !== "model") {
          throw this.error(at, "missing name (a built-in plugin) or plugin (a module path)");
        }
      });
    }
    return parsed.data;
  }

  /** Turn a zod error at `prefix` into a located one-line error. */
  zodError(error: z.ZodError, prefix: KeyPath): LanternError {
    const issue = error.issues[0];
    const path = [...prefix, ...issue.path.map((k) => typeof k === "symbol" ? String(k) : k)];
    return this.error(path, describeIssue(issue));
  }
}

/** A short message for a zod issue. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    return `unknown parameter${issue.keys.length > 1 ? "s" : ""} ${
      issue.keys.map((k) => `'${k}'`).join(", ")
    }`;
  }
  if (issue.code === "invalid_type" && issue.input === undefined) {
    return `missing required value (${issue.expected})`;
  }
  return issue.message;
}
