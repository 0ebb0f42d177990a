/**
 * `lantern serve`: the HTTP service of `server/handler.ts` under `Deno.serve`.
 *
 * ```sh
 * deno task lantern serve --port 8000 --model emotion=examples/models/emotion.onnx
 * deno task lantern serve --config server.yaml
 * ```
 *
 * @module
 */
import { createHandler, type HandlerConfig, type ModelConfig } from "../server/handler.ts";
import { parseServerConfig } from "../server/config.ts";
import { LanternError } from "../pipeline/errors.ts";
import { dirname } from "../pipeline/paths.ts";
import type { BackendRequest } from "../kernels/backend.ts";

/** Flags of `lantern serve`. */
export interface ServeFlags {
  /** TCP port (0 picks a free one). */
  port?: string | number;
  /** Interface to listen on (default 127.0.0.1). */
  hostname?: string;
  /** `NAME=PATH_OR_URL` entries of the allow-list. */
  model: string[];
  /** Config file. */
  config?: string;
  /** Backend for `--model` entries. */
  backend?: BackendRequest;
  /** Turn request logs off. */
  quiet?: boolean;
}

/** Parse `NAME=PATH_OR_URL` (a bare path is named after its file stem). */
export function parseModelFlag(text: string): [string, string] {
  const eq = text.indexOf("=");
  const source = eq > 0 ? text.slice(eq + 1) : text;
  const name = eq > 0
    ? text.slice(0, eq)
    : (source.split("/").pop() ?? source).replace(/\.onnx$/i, "");
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || !source) {
    throw new LanternError(
      `Cannot parse --model "${text}": expected NAME=PATH_OR_URL with a name of letters, digits, _ . -`,
    );
  }
  return [name, source];
}

/** The handler config from flags and an optional config file (flags add models to it). */
export async function serveConfig(flags: ServeFlags): Promise<HandlerConfig> {
  let base: HandlerConfig = { models: {} };
  if (flags.config) {
    let text: string;
    try {
      text = await Deno.readTextFile(flags.config);
    } catch (e) {
      throw new LanternError(`Cannot read config "${flags.config}": ${(e as Error).message}`);
    }
    base = parseServerConfig(text, { file: flags.config, baseDir: dirname(flags.config) });
  }
  const models: Record<string, ModelConfig> = { ...base.models };
  for (const flag of flags.model) {
    const [name, source] = parseModelFlag(flag);
    models[name] = { source, backend: flags.backend };
  }
  if (Object.keys(models).length === 0) {
    throw new LanternError("Cannot serve: no models, give --model NAME=PATH_OR_URL or --config");
  }
  return { ...base, models, log: flags.quiet ? false : base.log };
}

/** Start the service; resolves with the server once it listens and its models are loaded. */
export async function serve(
  flags: ServeFlags,
  options: { signal?: AbortSignal } = {},
): Promise<Deno.HttpServer<Deno.NetAddr>> {
  // Before the models load, so a mistyped --port fails at once rather than after a cold load.
  const port = Number(flags.port ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new LanternError(`Cannot serve on port "${flags.port}": expected 0–65535`);
  }
  const config = await serveConfig(flags);
  const handler = createHandler(config);
  await handler.ready();
  const server = Deno.serve({
    port,
    hostname: flags.hostname ?? "127.0.0.1",
    signal: options.signal,
    onListen: ({ hostname, port }) => {
      if (config.log === false) return;
      console.error(
        JSON.stringify({
          time: new Date().toISOString(),
          level: "info",
          msg: "listening",
          url: `http://${hostname}:${port}/`,
          models: Object.keys(config.models),
        }),
      );
    },
  }, handler);
  server.finished.then(() => handler.dispose());
  return server;
}
