import assert from "node:assert/strict";
import { parsePath, PipelineSource } from "../pipeline/config.ts";
import { expandGlob, globToRegExp } from "../pipeline/glob.ts";
import { closestMatches } from "../pipeline/errors.ts";
import "../plugins/mod.ts";
import { runPipeline } from "../mod.ts";

const GOOD = `inputs: images/*.png
model:
  path: m.onnx
methods:
  - name: cam
    target: top1
render:
  - name: heatmap
`;

Deno.test("PipelineSource validates a good file", () => {
  const config = new PipelineSource(GOOD, "p.yaml").validate();
  assert.equal(config.methods[0].name, "cam");
  assert.equal(config.inputs, "images/*.png");
});

Deno.test("malformed YAML names the file and line", () => {
  const bad = "inputs: a.png\nmodel:\n  path: [unclosed\nmethods: []\n";
  assert.throws(
    () => new PipelineSource(bad, "bad.yaml"),
    /^LanternError: bad\.yaml:\d+ malformed YAML/,
  );
});

Deno.test("schema errors name file, line and key path", () => {
  const text = GOOD.replace("methods:\n  - name: cam\n    target: top1\n", "methods: []\n");
  assert.throws(
    () => new PipelineSource(text, "p.yaml").validate(),
    (e: Error) => /^p\.yaml:4 methods: /.test(e.message),
  );
  const extra = GOOD + "colour: red\n";
  assert.throws(
    () => new PipelineSource(extra, "p.yaml").validate(),
    (e: Error) => e.message.startsWith("p.yaml:1") && e.message.includes("'colour'"),
  );
});

Deno.test("--set overrides nested values with YAML-typed values", () => {
  const source = new PipelineSource(GOOD, "p.yaml");
  source.set("methods[0].target=281");
  source.set("render[0].alpha=0.25");
  const config = source.validate();
  assert.equal(config.methods[0].target, 281);
  assert.equal(config.render[0].alpha, 0.25);
  assert.equal(source.line(["methods", 0, "target"]), 6);
});

Deno.test("parsePath reads key paths and rejects garbage", () => {
  assert.deepEqual(parsePath("methods[0].target"), ["methods", 0, "target"]);
  assert.deepEqual(parsePath("model.backend"), ["model", "backend"]);
  assert.throws(() => parsePath("methods[x"), /Cannot parse key path/);
});

Deno.test("unknown plugins and parameters are reported with their line and close matches", async () => {
  const unknownMethod = GOOD.replace("name: cam", "name: gradkam");
  await assert.rejects(
    runPipeline(unknownMethod, { file: "p.yaml", baseDir: "tests" }),
    (e: Error) =>
      /^p\.yaml:5 methods\[0\]\.name: Unknown method plugin 'gradkam' — did you mean 'gradcam'/
        .test(e.message),
  );
  const unknownParam = GOOD.replace("target: top1", "target: top1\n    relus: false");
  await assert.rejects(
    runPipeline(unknownParam, { file: "p.yaml", baseDir: "tests" }),
    (e: Error) =>
      /^p\.yaml:7 methods\[0\]\.relus: unknown parameter 'relus' for method 'cam' — did you mean 'relu'/
        .test(e.message),
  );
  const badValue = GOOD.replace("target: top1", "target: best");
  await assert.rejects(
    runPipeline(badValue, { file: "p.yaml", baseDir: "tests" }),
    (e: Error) => /^p\.yaml:6 methods\[0\]\.target: /.test(e.message),
  );
});

Deno.test("a user plugin module is loaded by path and validated like a built-in", async () => {
  const text = GOOD.replace("name: cam", "plugin: ./fixtures/plugins/input_times_two.ts")
    .replace("target: top1", "target: top1\n    factr: 3");
  await assert.rejects(
    runPipeline(text, { file: "p.yaml", baseDir: "tests" }),
    (e: Error) =>
      /^p\.yaml:7 methods\[0\]\.factr: unknown parameter 'factr' for method 'input-times-two' — did you mean 'factor'/
        .test(e.message),
  );
  const missing = GOOD.replace("name: cam", "plugin: ./fixtures/plugins/nope.ts");
  await assert.rejects(
    runPipeline(missing, { file: "p.yaml", baseDir: "tests" }),
    /^LanternError: p\.yaml:5 methods\[0\]\.plugin: Cannot load plugin module "\.\/fixtures\/plugins\/nope\.ts"/,
  );
});

Deno.test("globs expand like a shell", async () => {
  assert.ok(globToRegExp("*.{png,jpg}").test("a.jpg"));
  assert.ok(!globToRegExp("*.{png,jpg}").test("a.jpeg"));
  const found = await expandGlob("examples/images/*.{png,jpg}");
  assert.deepEqual(found, [
    "examples/images/chelsea.png",
    "examples/images/coffee.png",
    "examples/images/grace_hopper.jpg",
  ]);
  assert.deepEqual(await expandGlob("examples/**/astronaut_face.png"), [
    "examples/images/faces/astronaut_face.png",
  ]);
});

Deno.test("closestMatches ranks by edit distance", () => {
  assert.deepEqual(closestMatches("layer5", ["layer4", "conv1", "layer3", "fc"], 2), [
    "layer3",
    "layer4",
  ]);
});

Deno.test("a pipeline of input-synthesizing methods needs no inputs; others do", async () => {
  const text = `model:
  path: fixtures/torch/squeezenet/model.onnx
  backend: wasm
methods:
  - name: activation-max
    objective: logit
    target: 1
    steps: 2
render:
  - name: npy
    batch: true
`;
  const result = await runPipeline(text, { file: "p.yaml", baseDir: "tests" });
  assert.deepEqual(result.files.map((f) => f.path), ["activation-max.npy"]);
  assert.deepEqual(result.explanations[0].map.dims, [1, 3, 66, 66]);
  await assert.rejects(
    runPipeline(
      text.replace("activation-max", "saliency").replace(/ {4}(objective|steps): .*\n/g, ""),
      {
        file: "p.yaml",
        baseDir: "tests",
      },
    ),
    /^LanternError: p\.yaml:1 missing inputs/,
  );
});
