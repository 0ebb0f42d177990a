/**
 * The authoring kit is complete by construction: every symbol a built-in method imports from
 * Lantern's shared modules (pipeline/, kernels/, graph/ and the plugins/method/_*.ts helpers) is
 * exported by mod.ts — values as the very same binding, types by name — so a plugin written
 * against mod.ts can do whatever a built-in does.
 */
import assert from "node:assert/strict";
import * as kit from "../mod.ts";
import { ROOT } from "./_helpers.ts";

/**
 * Imports that are not part of the kit, and why: the built-in methods themselves (a plugin runs
 * one through `getPlugin("method", name)`), and the `image` preprocess plugin's internals, which
 * `activation-max` reads to undo the model's normalization (a plugin gets it from `batch`).
 */
const NOT_KIT = [/^plugins\/method\/[a-z][a-z_]*\.ts$/, /^plugins\/preprocess\//];

interface Imported {
  module: string;
  name: string;
  type: boolean;
  from: string;
}

function methodImports(): Imported[] {
  const found: Imported[] = [];
  const dir = `${ROOT}/plugins/method`;
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".ts")) continue;
    const text = Deno.readTextFileSync(`${dir}/${entry.name}`);
    const re = /import\s+(type\s+)?\{([^}]*)\}\s+from\s+"(\.[^"]+)"/g;
    for (const m of text.matchAll(re)) {
      const module = new URL(m[3], `file://${dir}/${entry.name}`).pathname.slice(ROOT.length + 1);
      if (NOT_KIT.some((r) => r.test(module))) continue;
      for (const raw of m[2].split(",").map((s) => s.trim()).filter(Boolean)) {
        const type = Boolean(m[1]) || raw.startsWith("type ");
        const name = raw.replace(/^type\s+/, "").split(/\s+as\s+/)[0];
        found.push({ module, name, type, from: entry.name });
      }
    }
  }
  return found;
}

function exportedTypeNames(): Set<string> {
  const text = Deno.readTextFileSync(`${ROOT}/mod.ts`);
  const names = new Set<string>();
  for (const m of text.matchAll(/export\s+(type\s+)?\{([^}]*)\}\s+from/g)) {
    for (const raw of m[2].split(",").map((s) => s.trim()).filter(Boolean)) {
      const parts = raw.replace(/^type\s+/, "").split(/\s+as\s+/);
      names.add(parts[parts.length - 1]);
    }
  }
  return names;
}

Deno.test("mod.ts exports everything the built-in methods import from Lantern's shared modules", async () => {
  const imports = methodImports();
  assert.ok(imports.length > 40, `found only ${imports.length} imports: is the parser broken?`);
  const exported = kit as Record<string, unknown>;
  const typeNames = exportedTypeNames();
  const missing: string[] = [];
  for (const i of imports) {
    if (i.type) {
      if (!typeNames.has(i.name)) missing.push(`type ${i.name} from ${i.module} (${i.from})`);
      continue;
    }
    const original = (await import(`${ROOT}/${i.module}`))[i.name];
    assert.notEqual(original, undefined, `${i.module} has no export ${i.name}`);
    if (exported[i.name] !== original) missing.push(`${i.name} from ${i.module} (${i.from})`);
  }
  assert.deepEqual(missing, [], `mod.ts lacks: ${missing.join(", ")}`);
});

Deno.test("the kit's plugin helpers make a working method in a few lines", () => {
  const { defineMethod, explanation, resolveTargetRows, targetParam, tensor, z } = kit;
  const plugin = defineMethod({
    name: "ones",
    description: "A map of ones",
    params: z.object({ target: targetParam }).strict(),
    run({ model, batch, logits }, { target }) {
      const rows = resolveTargetRows(target, logits);
      const map = tensor(new Float32Array(batch.tensor.data.length).fill(1), batch.tensor.dims);
      return Promise.resolve(explanation(model, { method: "ones", rows, map, space: "input" }));
    },
  });
  assert.equal(plugin.kind, "method");
  assert.deepEqual(plugin.params.parse({}), { target: "top1" });
  assert.throws(() => plugin.params.parse({ targt: 1 }));
});
