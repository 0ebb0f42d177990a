/**
 * A JSON Schema validator for the subset the service's OpenAPI document uses (type, properties,
 * required, additionalProperties, items, enum, const, anyOf, oneOf, allOf, $ref, minimum,
 * maximum, minItems, maxItems, pattern, minLength), and a check of a response against the
 * document: its status, content type and body.
 */

/** A JSON Schema object. */
export type Schema = Record<string, unknown>;

function typeOf(value: unknown): string[] {
  if (value === null) return ["null"];
  if (Array.isArray(value)) return ["array"];
  if (typeof value === "number") {
    return Number.isInteger(value) ? ["integer", "number"] : ["number"];
  }
  return [typeof value];
}

/** Problems of `value` against `schema` (empty when valid); `$ref`s resolve in `root`. */
export function validate(value: unknown, schema: Schema, root: Schema, at = "$"): string[] {
  if (typeof schema.$ref === "string") {
    const path = schema.$ref.replace(/^#\//, "").split("/");
    // deno-lint-ignore no-explicit-any
    const target = path.reduce((o: any, k) => o?.[k], root) as Schema | undefined;
    if (!target) return [`${at}: unresolved $ref ${schema.$ref}`];
    return validate(value, target, root, at);
  }
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const want = Array.isArray(schema.type) ? schema.type as string[] : [schema.type as string];
    if (!typeOf(value).some((t) => want.includes(t))) {
      return [`${at}: expected ${want.join("|")}, got ${typeOf(value)[0]}`];
    }
  }
  if ("const" in schema && value !== schema.const) errors.push(`${at}: expected ${schema.const}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value as never)) {
    errors.push(`${at}: ${JSON.stringify(value)} not in enum`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) {
      errors.push(`${at}: ${value} < ${schema.minimum}`);
    }
    if (typeof schema.maximum === "number" && value > schema.maximum) {
      errors.push(`${at}: ${value} > ${schema.maximum}`);
    }
  }
  if (typeof value === "string") {
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern).test(value)) {
      errors.push(`${at}: "${value}" does not match ${schema.pattern}`);
    }
    if (typeof schema.minLength === "number" && value.length < schema.minLength) {
      errors.push(`${at}: shorter than ${schema.minLength}`);
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) {
      errors.push(`${at}: fewer than ${schema.minItems} items`);
    }
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) {
      errors.push(`${at}: more than ${schema.maxItems} items`);
    }
    if (schema.items && typeof schema.items === "object") {
      value.forEach((v, i) =>
        errors.push(...validate(v, schema.items as Schema, root, `${at}[${i}]`))
      );
    }
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const key of (schema.required ?? []) as string[]) {
      if (!(key in obj)) errors.push(`${at}: missing required "${key}"`);
    }
    for (const [key, v] of Object.entries(obj)) {
      if (props[key]) errors.push(...validate(v, props[key], root, `${at}.${key}`));
      else if (schema.additionalProperties === false) {
        errors.push(`${at}: unexpected property "${key}"`);
      } else if (typeof schema.additionalProperties === "object") {
        errors.push(...validate(v, schema.additionalProperties as Schema, root, `${at}.${key}`));
      }
    }
  }
  if (Array.isArray(schema.allOf)) {
    for (const s of schema.allOf as Schema[]) errors.push(...validate(value, s, root, at));
  }
  if (Array.isArray(schema.anyOf)) {
    const ok = (schema.anyOf as Schema[]).some((s) => validate(value, s, root, at).length === 0);
    if (!ok) errors.push(`${at}: matches none of anyOf`);
  }
  if (Array.isArray(schema.oneOf)) {
    const n = (schema.oneOf as Schema[]).filter((s) => validate(value, s, root, at).length === 0)
      .length;
    if (n !== 1) errors.push(`${at}: matches ${n} of oneOf, expected exactly 1`);
  }
  return errors;
}

/** A response read once, with its body as bytes. */
export interface ReadResponse {
  readonly status: number;
  readonly type: string;
  readonly headers: Headers;
  readonly bytes: Uint8Array;
  /** The body parsed as JSON (for JSON responses). */
  readonly json?: unknown;
}

/** Read a response's body. */
export async function read(response: Response): Promise<ReadResponse> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  const type = (response.headers.get("content-type") ?? "").split(";")[0];
  const json = type === "application/json"
    ? JSON.parse(new TextDecoder().decode(bytes))
    : undefined;
  return { status: response.status, type, headers: response.headers, bytes, json };
}

const PNG = [0x89, 0x50, 0x4e, 0x47];

/**
 * Check a response of `method path` against the document: the status must be documented, the
 * content type one of that status's, and the body valid against its schema (NDJSON line by
 * line; PNG by its magic). Throws listing the problems.
 */
export function checkResponse(doc: Schema, method: string, path: string, r: ReadResponse): void {
  // deno-lint-ignore no-explicit-any
  const op = (doc as any).paths?.[path]?.[method.toLowerCase()];
  if (!op) throw new Error(`${method} ${path} is not in the OpenAPI document`);
  const response = op.responses[String(r.status)] ?? op.responses.default;
  if (!response) throw new Error(`${method} ${path}: status ${r.status} is not documented`);
  const media = response.content?.[r.type];
  if (!media) {
    throw new Error(`${method} ${path} ${r.status}: content type "${r.type}" is not documented`);
  }
  for (const [name] of Object.entries(response.headers ?? {})) {
    if (!r.headers.has(name)) throw new Error(`${method} ${path} ${r.status}: no ${name} header`);
  }
  const problems: string[] = [];
  if (r.type === "application/json") problems.push(...validate(r.json, media.schema, doc));
  else if (r.type === "application/x-ndjson") {
    const lines = new TextDecoder().decode(r.bytes).split("\n").filter((l) => l);
    if (lines.length === 0) problems.push("empty stream");
    lines.forEach((l, i) =>
      problems.push(...validate(JSON.parse(l), media.schema, doc, `line ${i}`))
    );
  } else if (r.type === "image/png") {
    if (!PNG.every((b, i) => r.bytes[i] === b)) problems.push("body is not a PNG");
  }
  if (problems.length) {
    throw new Error(`${method} ${path} ${r.status}: ${problems.slice(0, 5).join("; ")}`);
  }
}
