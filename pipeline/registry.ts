/**
 * The one plugin registry. Built-ins register themselves (see `plugins/mod.ts`); pipeline entries
 * may instead name a TypeScript module by path or URL that exports a plugin, and a pipeline's
 * `plugins:` modules are loaded — in-process or sandboxed — by a {@linkcode PluginLoader}.
 *
 * @module
 */
import { didYouMean, firstLine, LanternError } from "./errors.ts";
import { type AnyPlugin, isPlugin, type PluginKind } from "./plugin.ts";
import { toFileUrl } from "./paths.ts";
import { checkSandboxSource, SandboxHost } from "./sandbox.ts";
import { checkPin, fetchPinned, isAllowedUrl } from "../plugins/model/source.ts";

const registry = new Map<string, AnyPlugin>();

function key(kind: PluginKind, name: string): string {
  return `${kind}:${name}`;
}

/** Register a plugin under its kind and name; a later registration replaces an earlier one. */
export function registerPlugin(plugin: AnyPlugin): void {
  if (!isPlugin(plugin)) {
    throw new LanternError("Cannot register plugin: it lacks name, kind, params schema or run");
  }
  registry.set(key(plugin.kind, plugin.name), plugin);
}

/** Names of the registered plugins of one kind, sorted. */
export function pluginNames(kind: PluginKind): string[] {
  return [...registry.values()].filter((p) => p.kind === kind).map((p) => p.name).sort();
}

/** Every registered plugin of one kind. */
export function pluginsOf(kind: PluginKind): AnyPlugin[] {
  return [...registry.values()].filter((p) => p.kind === kind);
}

/** The registered plugin `name` of `kind`; throws a one-line error with close matches if absent. */
export function getPlugin(kind: PluginKind, name: string): AnyPlugin {
  const plugin = registry.get(key(kind, name));
  if (!plugin) {
    throw new LanternError(
      `Unknown ${kind} plugin '${name}'${didYouMean(name, pluginNames(kind))}`,
    );
  }
  return plugin;
}

/** Pick the plugin of `kind` (named `name`, if given) among a module's exports. */
export function choosePlugin(
  found: readonly AnyPlugin[],
  specifier: string,
  options: { kind: PluginKind; name?: string },
): AnyPlugin {
  const ofKind = found.filter((p) => p.kind === options.kind);
  const chosen = options.name ? ofKind.find((p) => p.name === options.name) : ofKind[0];
  if (!chosen) {
    const what = options.name
      ? `a ${options.kind} plugin named '${options.name}'`
      : `a ${options.kind} plugin`;
    throw new LanternError(
      `Cannot load plugin module "${specifier}": it exports no ${what} (use define${
        options.kind[0].toUpperCase() + options.kind.slice(1)
      }() from mod.ts)`,
    );
  }
  if (ofKind.length > 1 && !options.name) {
    throw new LanternError(
      `Cannot choose plugin in "${specifier}": it exports ${ofKind.length} ${options.kind} plugins (${
        ofKind.map((p) => p.name).join(", ")
      }) — add name: to the entry`,
    );
  }
  return chosen;
}

/**
 * Import a plugin module (a path relative to `baseUrl`, or a URL) in-process and return its plugin
 * of `kind`. When the module exports several plugins of that kind, `name` picks one.
 */
export async function importPlugin(
  specifier: string,
  options: { kind: PluginKind; baseUrl: URL; name?: string },
): Promise<AnyPlugin> {
  const url = new URL(specifier, options.baseUrl);
  return choosePlugin(await importModule(url, specifier), specifier, options);
}

async function importModule(url: URL, label: string): Promise<AnyPlugin[]> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(url.href);
  } catch (e) {
    const msg = firstLine(e);
    throw new LanternError(`Cannot load plugin module "${label}": ${msg}`);
  }
  return Object.values(mod).filter(isPlugin);
}

/** A plugin module a pipeline uses (see `plugins:` in `pipeline/config.ts`). */
export interface PluginModuleSpec {
  /** Path relative to the loader's base, or an https URL, as written. */
  readonly specifier: string;
  /** Expected hex sha256 of the module's bytes (required for URLs). */
  readonly sha256?: string;
  /** Run in-process (`true`) or in a sandboxed worker (`false`). */
  readonly trusted: boolean;
  /** Sandboxed only: stop a method run after this many ms (default 600 000). */
  readonly runTimeoutMs?: number;
}

/** Options for {@linkcode PluginLoader}. */
export interface PluginLoaderOptions {
  /** What relative module paths resolve against (the pipeline file's directory). */
  readonly baseUrl: URL;
  /** Where verified downloads are kept (default `$LANTERN_CACHE/plugins` or `~/.cache/lantern/plugins`). */
  readonly cacheDir?: string;
}

interface LoadedModule {
  readonly plugins: Promise<AnyPlugin[]>;
  readonly file?: string;
  host?: SandboxHost;
}

const LANTERN_ROOT = new URL("../", import.meta.url);

/**
 * Loads plugin modules for pipeline runs and keeps them: trusted modules are imported in-process,
 * the others run in a {@linkcode SandboxHost}. `invalidate` makes the next load of a changed local
 * module import it afresh (a new `?v=N` URL, or a new worker), which is how `--watch` reloads only
 * the plugin that changed. A re-imported module's own imports stay cached.
 */
export class PluginLoader {
  readonly #baseUrl: URL;
  readonly #cacheDir?: string;
  readonly #modules = new Map<string, LoadedModule>();
  readonly #versions = new Map<string, number>();
  readonly #files = new Set<string>();

  /** A loader resolving relative paths against `options.baseUrl`. */
  constructor(options: PluginLoaderOptions) {
    this.#baseUrl = options.baseUrl;
    this.#cacheDir = options.cacheDir;
  }

  /** The absolute URL of a module specifier. */
  resolve(specifier: string): URL {
    return new URL(specifier, this.#baseUrl);
  }

  /** Load (or reuse) a module and return every plugin it exports. */
  load(spec: PluginModuleSpec): Promise<AnyPlugin[]> {
    const url = this.resolve(spec.specifier);
    const key = `${spec.trusted ? "trusted" : "sandboxed"} ${spec.sha256 ?? ""} ${
      spec.runTimeoutMs ?? ""
    } ${url.href}`;
    const file = url.protocol === "file:" ? decodeURIComponent(url.pathname) : undefined;
    if (file) this.#files.add(file);
    let loaded = this.#modules.get(key);
    if (!loaded) {
      const entry: LoadedModule = {
        plugins: this.#load(url, spec, (host) => entry.host = host),
        file,
      };
      loaded = entry;
      this.#modules.set(key, loaded);
      loaded.plugins.catch(() => this.#modules.delete(key));
    }
    return loaded.plugins;
  }

  /** Local module files asked for so far, loaded or failed (what `--watch` watches). */
  files(): string[] {
    return [...this.#files];
  }

  /**
   * Forget the modules loaded from the local file `path` so the next load imports it afresh;
   * returns whether it is one of this loader's files.
   */
  invalidate(path: string): boolean {
    if (!this.#files.has(path)) return false;
    for (const [key, m] of this.#modules) {
      if (m.file !== path) continue;
      m.host?.close();
      this.#modules.delete(key);
    }
    this.#versions.set(path, (this.#versions.get(path) ?? 0) + 1);
    return true;
  }

  /** Stop every sandbox worker. */
  dispose(): void {
    for (const m of this.#modules.values()) m.host?.close();
    this.#modules.clear();
  }

  async #load(
    url: URL,
    spec: PluginModuleSpec,
    setHost: (host: SandboxHost) => void,
  ): Promise<AnyPlugin[]> {
    const label = spec.specifier;
    let target = url;
    const remote = url.protocol === "https:" || url.protocol === "http:";
    if (remote) target = await this.#download(url, spec, label);
    else if (spec.sha256) await verifyFile(url, spec.sha256, label);
    const version = this.#versions.get(decodeURIComponent(target.pathname));
    if (version) target = new URL(`${target.href}?v=${version}`);
    if (spec.trusted) return importModule(target, label);
    const { problem, files } = await checkSandboxSource(new URL(target.href.replace(/\?.*$/, "")), {
      trustedRoot: LANTERN_ROOT,
      read: (u) => Deno.readTextFile(u),
      allowRelative: !remote,
    });
    if (problem) {
      throw new LanternError(
        `Cannot sandbox plugin module "${label}": ${problem}; sandboxed plugins may only import code by its specifier (mark it trusted: true to run it in-process)`,
      );
    }
    const host = await SandboxHost.open(target, { label, files, runTimeoutMs: spec.runTimeoutMs });
    setHost(host);
    return host.toPlugins();
  }

  async #download(url: URL, spec: PluginModuleSpec, label: string): Promise<URL> {
    const pin = spec.sha256?.toLowerCase();
    if (!pin) throw new LanternError(`Cannot load plugin "${label}": a URL needs a sha256 pin`);
    if (!isAllowedUrl(url.href)) {
      throw new LanternError(
        `Cannot load plugin "${label}": only https:// URLs (or http:// on loopback) are allowed`,
      );
    }
    const ext = url.pathname.match(/\.(?:ts|js|mts|mjs|tsx|jsx)$/)?.[0] ?? ".ts";
    const cacheFile = `${this.#cacheDir ?? defaultCacheDir()}/${pin}${ext}`;
    await fetchPinned(url.href, { what: `plugin "${label}"`, sha256: pin, cacheFile });
    return toFileUrl(cacheFile);
  }
}

async function verifyFile(url: URL, pin: string, label: string): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(url);
  } catch {
    throw new LanternError(`Cannot load plugin module "${label}": file not found`);
  }
  await checkPin(`plugin module "${label}"`, bytes, { sha256: pin });
}

function defaultCacheDir(): string {
  const env = Deno.env.get("LANTERN_CACHE");
  if (env) return `${env}/plugins`;
  return `${Deno.env.get("HOME") ?? "."}/.cache/lantern/plugins`;
}
