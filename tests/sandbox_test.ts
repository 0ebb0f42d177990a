/**
 * Sandboxed plugins (pipeline/sandbox.ts): denied file, network, env and subprocess access with a
 * clear one-line error while the other methods' results are kept; a proxy model that computes the
 * same as the real one; source checks; URL plugins pinned by sha256.
 */
import assert from "node:assert/strict";
import { PluginLoader, runPipeline } from "../mod.ts";
import { toFileUrl } from "../pipeline/paths.ts";
import { sha256Hex } from "../plugins/model/source.ts";
import { checkSandboxSource } from "../pipeline/sandbox.ts";
import { EMOTION, ROOT } from "./_helpers.ts";

const FACE = `${ROOT}/examples/images/faces/astronaut_face.png`;

function pipeline(plugins: string, methods: string): string {
  return `inputs: ${FACE}
model:
  path: ${EMOTION}
  backend: wasm
plugins:
${plugins}
methods:
${methods}
render:
  - name: npy
`;
}

const NOSY = "  - path: nosy.ts\n    trusted: false";
const BASE = { baseDir: `${ROOT}/tests/fixtures/plugins` };

Deno.test("a sandboxed plugin is denied file, network, env and subprocess access; the run goes on", async () => {
  const denied: [string, string][] = [
    ["read", 'read access to "/etc/passwd"'],
    ["write", 'write access to "/tmp/lantern-nosy.txt"'],
    ["net", 'net access to "127.0.0.1:8080"'],
    ["env", 'env access to "HOME"'],
    ["run", 'run access to "true"'],
    ["import", 'read access to "/etc/hostname.json"'],
  ];
  const methods = [
    "  - name: saliency",
    ...denied.map(([op]) => `  - name: nosy\n    id: nosy-${op}\n    try: ${op}`),
    "  - name: nosy\n    try: none",
  ].join("\n");
  const result = await runPipeline(pipeline(NOSY, methods), BASE);
  assert.deepEqual(result.explanations.map((e) => e.method), ["saliency", "nosy"]);
  assert.equal(result.failures.length, denied.length);
  denied.forEach(([op, what], i) => {
    const f = result.failures[i];
    assert.equal(f.method, `nosy-${op}`);
    assert.equal(
      f.message,
      `pipeline.yaml:${10 + 3 * i} methods[${
        i + 1
      }]: Plugin "nosy" (sandboxed) was denied ${what}: sandboxed plugins get no file, network, env or subprocess access; mark it trusted: true to run it in-process`,
    );
  });
  // The well-behaved run went through the proxy model and returned its map.
  const nosy = result.explanations[1];
  assert.deepEqual(nosy.map.dims, [1, 1, 64, 64]);
  assert.ok(nosy.map.data.every((v, i) => v === 2 * result.batch.tensor.data[i]));
  assert.equal(result.files.length, 2);
});

Deno.test("a sandboxed run that outlives timeout_s is stopped; the other methods are kept", async () => {
  const plugins = "  - path: spin.ts\n    trusted: false\n    timeout_s: 1";
  const t0 = performance.now();
  const result = await runPipeline(
    pipeline(plugins, "  - name: saliency\n  - name: spin\n  - name: saliency\n    id: again"),
    BASE,
  );
  assert.ok(performance.now() - t0 < 30_000);
  assert.deepEqual(result.explanations.map((e) => e.method), ["saliency", "again"]);
  assert.equal(result.failures.length, 1);
  assert.equal(
    result.failures[0].message,
    'pipeline.yaml:11 methods[1]: Plugin "spin" (sandboxed) did not finish in 1 s and was stopped: raise timeout_s in its plugins entry, or make it faster',
  );
});

Deno.test("a trusted plugin runs in-process with the process's permissions", async () => {
  const text = pipeline(
    "  - path: nosy.ts\n    trusted: true",
    "  - name: nosy\n    try: env",
  );
  const result = await runPipeline(text, BASE);
  assert.deepEqual(result.failures, []);
  assert.equal(result.explanations[0].method, "nosy");
});

Deno.test("the sandbox's proxy model gives the same gradients, layers and forward passes", async () => {
  const methods = "  - name: gradient-x-input\n  - name: eigen-cam\n    layer: add_2/add";
  const run = (trusted: boolean) =>
    runPipeline(
      pipeline(
        `  - path: plugins/gradient_x_input.ts\n    trusted: ${trusted}\n` +
          `  - path: plugins/eigen_cam.ts\n    trusted: ${trusted}`,
        methods,
      ),
      { baseDir: `${ROOT}/examples` },
    );
  const [inProcess, sandboxed] = [await run(true), await run(false)];
  for (const [a, b] of inProcess.explanations.map((e, i) => [e, sandboxed.explanations[i]])) {
    assert.deepEqual(b.map.dims, a.map.dims);
    assert.deepEqual(b.map.data, a.map.data, `${a.method} differs when sandboxed`);
    assert.equal(b.layer, a.layer);
  }
});

Deno.test("a sandboxed module that imports a file by a literal specifier is refused", async () => {
  const text = pipeline(
    "  - path: sneaky_import.ts\n    trusted: false",
    "  - name: sneaky",
  );
  await assert.rejects(
    runPipeline(text, BASE),
    /^LanternError: pipeline\.yaml:6 plugins\[0\]\.path: Cannot sandbox plugin module "sneaky_import\.ts": it uses a literal import\(\); sandboxed plugins may only import code by its specifier \(mark it trusted: true to run it in-process\)$/,
  );
});

Deno.test("plugins: entries need an explicit trust for paths and a sha256 for URLs", async () => {
  await assert.rejects(
    runPipeline(pipeline("  - path: nosy.ts", "  - name: saliency"), BASE),
    /pipeline\.yaml:6 plugins\[0\]: missing trusted: say true to run it in-process, or false to run it sandboxed/,
  );
  await assert.rejects(
    runPipeline(pipeline("  - url: https://example.org/p.ts", "  - name: saliency"), BASE),
    /pipeline\.yaml:6 plugins\[0\]: missing sha256: a plugin URL must be pinned by its hash/,
  );
  await assert.rejects(
    runPipeline(pipeline(NOSY, "  - plugin: https://example.org/p.ts"), BASE),
    /methods\[0\]\.plugin: Cannot load plugin "https:\/\/example\.org\/p\.ts": declare it under plugins: with url: and sha256:/,
  );
});

Deno.test("a URL plugin is downloaded, checked against its sha256 pin, cached and sandboxed", async () => {
  const source = await Deno.readFile(`${ROOT}/tests/fixtures/plugins/url_plugin.ts`);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(source),
  );
  const cacheDir = await Deno.makeTempDir();
  try {
    const url = `http://127.0.0.1:${server.addr.port}/url_plugin.ts`;
    const pin = await sha256Hex(source);
    const text = (sha: string) =>
      pipeline(`  - url: ${url}\n    sha256: "${sha}"`, "  - name: url-doubler");
    const loader = () => new PluginLoader({ baseUrl: toFileUrl(`${ROOT}/`), cacheDir });
    const plugins = loader();
    const result = await runPipeline(text(pin), { plugins });
    plugins.dispose();
    assert.deepEqual(result.failures, []);
    assert.ok(
      result.explanations[0].map.data.every((v, i) => v === 2 * result.batch.tensor.data[i]),
    );
    assert.ok((await Deno.stat(`${cacheDir}/${pin}.ts`)).isFile);
    const wrong = "0".repeat(64);
    const other = loader();
    await assert.rejects(
      runPipeline(text(wrong), { plugins: other }),
      new RegExp(
        `plugins\\[0\\]\\.url: Cannot load plugin "${url}": sha256 is ${pin}, expected ${wrong}`,
      ),
    );
    other.dispose();
  } finally {
    await server.shutdown();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("lantern run writes the other methods' outputs, prints the denial and exits 1", async () => {
  const { main } = await import("../cli/main.ts");
  const dir = await Deno.makeTempDir({ prefix: "lantern-sandbox-" });
  const text = pipeline(
    `  - path: ${ROOT}/tests/fixtures/plugins/nosy.ts\n    trusted: false`,
    "  - name: saliency\n  - name: nosy\n    try: read",
  );
  await Deno.writeTextFile(`${dir}/p.yaml`, text);
  const errors: string[] = [];
  const [error, log] = [console.error, console.log];
  console.error = (line: string) => errors.push(line);
  console.log = () => {};
  try {
    assert.equal(await main(["run", `${dir}/p.yaml`, "--out", `${dir}/out`]), 1);
  } finally {
    [console.error, console.log] = [error, log];
  }
  try {
    assert.deepEqual(errors, [
      `error: ${dir}/p.yaml:10 methods[1]: Plugin "nosy" (sandboxed) was denied read access to "/etc/passwd": sandboxed plugins get no file, network, env or subprocess access; mark it trusted: true to run it in-process`,
    ]);
    assert.ok((await Deno.stat(`${dir}/out/astronaut_face_saliency.npy`)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the source check refuses what Deno would preload without asking", async () => {
  const root = new URL("file:///lantern/");
  const files: Record<string, string> = {
    "/p/ok.ts": 'import { z } from "zod";\nimport { a } from "./lib/a.ts";\nimport "npm:x@1";\n' +
      'import { k } from "../../lantern/mod.ts";\nconst m = "x"; await import(m);',
    "/p/lib/a.ts": "export const a = 1; // import('/etc/passwd') in a comment is fine",
    "/p/abs.ts": 'import x from "/etc/x.ts";',
    "/p/remote.ts": 'import x from "https://example.org/x.ts";',
    "/p/up.ts": 'import x from "../secret.ts";',
    "/p/data.ts": 'import x from "./x.txt";',
    "/p/deep.ts": 'import { a } from "./lib/b.ts";',
    "/p/lib/b.ts": "export const a = await import(`/etc/hostname`);",
  };
  const check = (path: string, allowRelative = true) =>
    checkSandboxSource(new URL(`file://${path}`), {
      trustedRoot: root,
      read: (u) => Promise.resolve(files[u.pathname]),
      allowRelative,
    });
  assert.deepEqual(await check("/p/ok.ts"), { files: ["/p/ok.ts", "/p/lib/a.ts"] });
  const problems = await Promise.all(
    ["/p/abs.ts", "/p/remote.ts", "/p/up.ts", "/p/data.ts", "/p/deep.ts"].map(async (p) =>
      (await check(p)).problem
    ),
  );
  assert.deepEqual(problems, [
    'it imports the absolute path "/etc/x.ts"',
    'it imports "https://example.org/x.ts" (only relative, npm:, node: and import-map specifiers)',
    `it imports "../secret.ts", outside the plugin's directory`,
    'it imports a non-code file "./x.txt"',
    'its import "/p/lib/b.ts" uses a literal import()',
  ]);
  assert.equal(
    (await check("/p/deep.ts", false)).problem,
    'it imports "./lib/b.ts" by a relative path',
  );
});
