/**
 * The one plugin registry. Built-ins register themselves (see `plugins/mod.ts`); pipeline entries
 * may instead name a TypeScript module by path or URL that exports a plugin.
 *
 * @module
 */
import { didYouMean, LanternError } from "./errors.ts";
import { type AnyPlugin, isPlugin, type PluginKind } from "./plugin.ts";

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

/**
 * Import a plugin module (a path relative to `baseUrl`, or a URL) and return its plugin of `kind`.
 * When the module exports several plugins of that kind, `name` picks one.
 */
export async function importPlugin(
  specifier: string,
  options: { kind: PluginKind; baseUrl: URL; name?: string },
): Promise<AnyPlugin> {
  const url = new URL(specifier, options.baseUrl);
  let mod: Record<string, unknown>;
  try {
    mod = await import(url.href);
  } catch (e) {
    const msg = String((e as Error).message ?? e).split("\n")[0];
    throw new LanternError(`Cannot load plugin module "${specifier}": ${msg}`);
  }
  const found = Object.values(mod).filter(isPlugin).filter((p) => p.kind === options.kind);
  const chosen = options.name ? found.find((p) => p.name === options.name) : found[0];
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
  if (found.length > 1 && !options.name) {
    throw new LanternError(
      `Cannot choose plugin in "${specifier}": it exports ${found.length} ${options.kind} plugins (${
        found.map((p) => p.name).join(", ")
      }) — add name: to the entry`,
    );
  }
  return chosen;
}
