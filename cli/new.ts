/**
 * `lantern new method NAME [--dir DIR]`: scaffold a method plugin (a working gradient × input
 * that imports only the kit, `mod.ts`), its test (runs it on the bundled emotion model and checks
 * it against the built-in saliency gradient times the input) and a pipeline that uses it.
 *
 * @module
 */
import { LanternError } from "../pipeline/errors.ts";
import { absolute } from "../pipeline/paths.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** Options for {@linkcode scaffold}. */
export interface ScaffoldOptions {
  /** Directory the files are written to (created if missing). */
  readonly dir: string;
}

/** Write `DIR/<stem>.ts`, `DIR/<stem>_test.ts` and `DIR/<stem>.yaml`; refuses to overwrite. */
export async function scaffold(
  kind: string,
  name: string,
  options: ScaffoldOptions,
): Promise<string[]> {
  if (kind !== "method") {
    throw new LanternError(`Cannot scaffold a ${kind} plugin: only "method" is supported`);
  }
  if (!/^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$/.test(name)) {
    throw new LanternError(
      `Cannot scaffold method "${name}": use lower-case letters, digits, '-' or '_', starting with a letter (e.g. my-method)`,
    );
  }
  const stem = name.replaceAll("-", "_");
  const id = name.replaceAll("_", "-");
  const symbol = stem.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const dir = absolute(options.dir);
  const files: [string, string][] = [
    [`${dir}/${stem}.ts`, pluginSource(id, symbol, relative(dir, `${ROOT}/mod.ts`))],
    [`${dir}/${stem}_test.ts`, testSource(id, stem, symbol, dir)],
    [`${dir}/${stem}.yaml`, pipelineSource(id, stem, dir)],
  ];
  for (const [path] of files) {
    try {
      await Deno.lstat(path);
      throw new LanternError(
        `Cannot scaffold method "${name}": "${path}" exists — pick another name or --dir`,
      );
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  await Deno.mkdir(dir, { recursive: true });
  for (const [path, text] of files) await Deno.writeTextFile(path, text, { createNew: true });
  return files.map(([path]) => path);
}

/** A relative module specifier from directory `from` to file `to` (both absolute). */
function relative(from: string, to: string): string {
  const a = from.split("/").filter(Boolean);
  const b = to.split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  const up = a.length - i;
  return `${up ? "../".repeat(up) : "./"}${b.slice(i).join("/")}`;
}

function pluginSource(id: string, symbol: string, kit: string): string {
  return `/**
 * ${id}: a method plugin. It starts as gradient × input (Shrikumar et al. 2016): the input times
 * the gradient of the target's score with respect to it. Replace the body with your idea; the kit
 * (${kit}) gives forward passes (\`model.run(x, { outputs: [layer] })\`), gradients of any target
 * with respect to the input or any layer (\`gradients\`, \`targetLayerGradients\`, ReLU rules),
 * targets, batching, \`Random\`, upsampling and normalization.
 *
 * @module
 */
import {
  defineMethod,
  explanation,
  internalBatchParam,
  targetInputGradients,
  targetParam,
  tensor,
  z,
} from "${kit}";

/** ${id}: x ⊙ ∂y_c/∂x, \`[N,C,H,W]\`. */
export const ${symbol} = defineMethod({
  name: "${id}",
  description: "Input times its gradient, [N,C,H,W]",
  params: z.object({ target: targetParam, internal_batch: internalBatchParam }).strict(),
  async run(input, { target, internal_batch }) {
    const { rows, input: x, grad } = await targetInputGradients(input, {
      target,
      batchSize: internal_batch,
    });
    const map = tensor(grad.data.map((g, i) => g * x.data[i]), grad.dims);
    return explanation(input.model, { method: "${id}", rows, map, space: "input" });
  },
});
`;
}

function testSource(id: string, stem: string, symbol: string, dir: string): string {
  const kit = relative(dir, `${ROOT}/mod.ts`);
  return `/**
 * Runs ${id} from its pipeline on the bundled emotion model and checks it against the built-in
 * saliency gradient times the input. Run with
 * \`deno test -A --unstable-worker-options --config ${ROOT}/deno.json ${stem}_test.ts\`
 * (the --config is only needed outside the Lantern checkout).
 */
import assert from "node:assert/strict";
import { runPipeline } from "${kit}";
import { ${symbol} } from "./${stem}.ts";

const HERE = new URL(".", import.meta.url).pathname;

Deno.test("${id} is input × gradient on the emotion model", async () => {
  assert.equal(${symbol}.name, "${id}");
  const text = await Deno.readTextFile(\`\${HERE}/${stem}.yaml\`);
  const result = await runPipeline(
    text.replace("methods:", "methods:\\n  - name: saliency\\n    abs: false"),
    { baseDir: HERE },
  );
  assert.deepEqual(result.failures, []);
  const [grad, mine] = result.explanations;
  assert.equal(mine.method, "${id}");
  assert.deepEqual(mine.map.dims, result.batch.tensor.dims);
  const x = result.batch.tensor.data;
  let worst = 0, scale = 0;
  mine.map.data.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(v - grad.map.data[i] * x[i]));
    scale = Math.max(scale, Math.abs(grad.map.data[i] * x[i]));
  });
  assert.ok(scale > 0 && worst <= 1e-6 * scale, \`max error \${worst} of \${scale}\`);
});
`;
}

function pipelineSource(id: string, stem: string, dir: string): string {
  return `# ${id} on the bundled emotion classifier: deno task lantern run ${stem}.yaml [--watch]
inputs: ${relative(dir, `${ROOT}/examples/images/faces/astronaut_face.png`)}
out: out/${stem}

model:
  path: ${relative(dir, `${ROOT}/examples/models/emotion.onnx`)}
  backend: wasm

plugins:
  - path: ./${stem}.ts
    trusted: true # false runs it in a worker with no file, network, env or subprocess access

methods:
  - name: ${id}

render:
  - name: heatmap
    normalize: abs
  - name: npy
`;
}
