/**
 * `lantern new method NAME`: the scaffolded plugin, test and pipeline work as written (the
 * generated test is run with `deno test`), and nothing is overwritten.
 */
import assert from "node:assert/strict";
import { main } from "../cli/main.ts";
import { scaffold } from "../cli/new.ts";
import { ROOT } from "./_helpers.ts";

Deno.test("a scaffolded method plugin's own test passes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lantern-new-" });
  try {
    const written = await scaffold("method", "my-attribution", { dir: `${dir}/plugins` });
    assert.deepEqual(
      written.map((p) => p.slice(dir.length + 1)),
      [
        "plugins/my_attribution.ts",
        "plugins/my_attribution_test.ts",
        "plugins/my_attribution.yaml",
      ],
    );
    const test = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "-A",
        "--unstable-worker-options",
        "--config",
        `${ROOT}/deno.json`,
        `${dir}/plugins/my_attribution_test.ts`,
      ],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(test.stdout) + new TextDecoder().decode(test.stderr);
    assert.equal(test.code, 0, out);
    assert.match(out, /my-attribution is input × gradient on the emotion model \.\.\. .*ok/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lantern new refuses to overwrite, and checks the kind and the name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lantern-new-" });
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => errors.push(line);
  try {
    const log = console.log;
    console.log = () => {};
    try {
      assert.equal(await main(["new", "method", "twice", "--dir", dir]), 0);
    } finally {
      console.log = log;
    }
    const before = await Deno.readTextFile(`${dir}/twice.ts`);
    assert.equal(await main(["new", "method", "twice", "--dir", dir]), 1);
    assert.equal(await Deno.readTextFile(`${dir}/twice.ts`), before);
    assert.equal(await main(["new", "render", "x", "--dir", dir]), 1);
    assert.equal(await main(["new", "method", "Bad Name", "--dir", dir]), 1);
  } finally {
    console.error = original;
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(errors, [
    `error: Cannot scaffold method "twice": "${dir}/twice.ts" exists — pick another name or --dir`,
    'error: Cannot scaffold a render plugin: only "method" is supported',
    `error: Cannot scaffold method "Bad Name": use lower-case letters, digits, '-' or '_', starting with a letter (e.g. my-method)`,
  ]);
});
