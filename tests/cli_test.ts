import assert from "node:assert/strict";
import { decodeNpy } from "../kernels/npy.ts";
import { EMOTION, HAS_MOBILENET, MOBILENET, ROOT } from "./_helpers.ts";

/** Run the CLI as a user would; returns exit code, stdout and stderr. */
async function lantern(...args: string[]) {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}/cli/main.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const dec = new TextDecoder();
  const stderr = dec.decode(out.stderr).split("\n").filter((l) => l && !/XDG_RUNTIME_DIR/.test(l))
    .join("\n");
  return { code: out.code, stdout: dec.decode(out.stdout), stderr };
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

Deno.test({
  name: "explain writes <stem>_<method>.npy and .png with the documented shapes",
  ignore: !HAS_MOBILENET,
}, async () => {
  const out = await Deno.makeTempDir();
  try {
    const cam = await lantern(
      "explain",
      "--model",
      MOBILENET,
      "--input",
      "examples/images/chelsea.png",
      "--method",
      "cam",
      "--target",
      "top1",
      "--backend",
      "wasm",
      "--out",
      out,
    );
    assert.equal(cam.code, 0, cam.stderr);
    assert.deepEqual(decodeNpy(await Deno.readFile(`${out}/chelsea_cam.npy`)).dims, [1, 1, 7, 7]);
    const fm = await lantern(
      "explain",
      "--model",
      MOBILENET,
      "--input",
      "examples/images/chelsea.png",
      "--method",
      "feature-maps",
      "--layer",
      "697",
      "--out",
      out,
    );
    assert.equal(fm.code, 0, fm.stderr);
    assert.deepEqual(decodeNpy(await Deno.readFile(`${out}/chelsea_feature-maps.npy`)).dims, [
      1,
      1280,
      7,
      7,
    ]);
    const occ = await lantern(
      "explain",
      "--model",
      EMOTION,
      "--input",
      "examples/images/faces/*.png",
      "--method",
      "occlusion",
      "--param",
      "window=16",
      "--param",
      "stride=8",
      "--out",
      out,
    );
    assert.equal(occ.code, 0, occ.stderr);
    assert.deepEqual(decodeNpy(await Deno.readFile(`${out}/astronaut_face_occlusion.npy`)).dims, [
      1,
      1,
      64,
      64,
    ]);
    const files = await listDir(out);
    for (
      const f of [
        "chelsea_cam.png",
        "chelsea_feature-maps.png",
        "astronaut_face_occlusion.png",
        "grace_hopper_face_occlusion.png",
        "results.json",
      ]
    ) assert.ok(files.includes(f), `${f} missing from ${files}`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("layers lists tensors; doctor explains the backend", async () => {
  const layers = await lantern("layers", EMOTION, "--json");
  assert.equal(layers.code, 0, layers.stderr);
  const list = JSON.parse(layers.stdout) as { name: string; op: string; shape: number[] }[];
  assert.deepEqual(list.find((t) => t.name === "add_2/add"), {
    name: "add_2/add",
    op: "Add",
    node: "add_2/add",
    shape: [1, 256, 8, 8],
  });
  const doctor = await lantern("doctor", "--json");
  assert.equal(doctor.code, 0, doctor.stderr);
  const report = JSON.parse(doctor.stdout);
  assert.equal(report.simd, true);
  assert.ok(["wasm", "webgpu", "native"].includes(report.backend));
  assert.match(report.reason, /\w/);
});

const BAD_CASES: [string, string[], RegExp][] = [
  [
    "missing input file",
    ["--input", "nope.png"],
    /Cannot read input ".*nope\.png": file not found/,
  ],
  [
    "corrupt PNG",
    ["--input", "tests/fixtures/cli/corrupt.png"],
    /Cannot decode ".*corrupt\.png": corrupt PNG data/,
  ],
  ["non-image", ["--input", "deno.json"], /Cannot decode ".*deno\.json": not a PNG or JPEG file/],
  ["unknown layer", [
    "--input",
    "examples/images/chelsea.png",
    "--method",
    "feature-maps",
    "--layer",
    "69",
  ], /--layer: unknown tensor '69' — did you mean/],
  [
    "wrong input shape",
    ["--input", "tests/fixtures/cli/wrong_shape.npy"],
    /expected \[N,3,224,224\], got \[1,3,200,200\]/,
  ],
  [
    "unknown method",
    ["--input", "examples/images/chelsea.png", "--method", "gradkam"],
    /--method: Unknown method plugin 'gradkam' — did you mean/,
  ],
  ["unknown param", [
    "--input",
    "examples/images/chelsea.png",
    "--method",
    "occlusion",
    "--param",
    "windw=8",
  ], /--param windw: unknown parameter 'windw' for method 'occlusion' — did you mean 'window'/],
  ["bad param value", [
    "--input",
    "examples/images/chelsea.png",
    "--method",
    "cam",
    "--param",
    "relu=maybe",
  ], /--param relu: /],
  [
    "missing model",
    ["--input", "examples/images/chelsea.png", "--model", "nope.onnx"],
    /Cannot load model "nope\.onnx": file not found/,
  ],
];

for (const [name, override, pattern] of BAD_CASES) {
  Deno.test(
    { name: `explain refuses ${name} with one line and no output`, ignore: !HAS_MOBILENET },
    async () => {
      const out = `${await Deno.makeTempDir()}/out`;
      const args = ["--model", MOBILENET, "--method", "cam", "--backend", "wasm", "--out", out];
      for (let i = 0; i < override.length; i += 2) {
        const at = args.indexOf(override[i]);
        if (at >= 0) args[at + 1] = override[i + 1];
        else args.push(override[i], override[i + 1]);
      }
      const r = await lantern("explain", ...args);
      assert.notEqual(r.code, 0);
      assert.equal(r.stderr.trim().split("\n").length, 1, `not one line: ${r.stderr}`);
      assert.match(r.stderr, /^error: /);
      assert.match(r.stderr, pattern);
      assert.deepEqual(await listDir(out), []);
    },
  );
}

Deno.test({
  name: "run reports malformed YAML, unknown plugins and params with file:line",
  ignore: !HAS_MOBILENET,
}, async () => {
  const dir = await Deno.makeTempDir();
  const base =
    `inputs: ${ROOT}/examples/images/chelsea.png\nout: ${dir}/out\nmodel:\n  path: ${MOBILENET}\nmethods:\n  - name: cam\nrender:\n  - name: npy\n`;
  const cases: [string, RegExp][] = [
    [base.replace("  - name: npy\n", "  - name: npy\n   bad: [\n"), /p\.yaml:\d+ malformed YAML/],
    [
      base.replace("name: cam", "plugin: ./missing_plugin.ts"),
      /p\.yaml:6 methods\[0\]\.plugin: Cannot load plugin module/,
    ],
    [
      base.replace("name: npy", "name: npyy"),
      /p\.yaml:8 render\[0\]\.name: Unknown render plugin 'npyy' — did you mean 'npy'/,
    ],
    [
      base.replace("name: cam", "name: cam\n    relus: true"),
      /p\.yaml:7 methods\[0\]\.relus: unknown parameter 'relus'/,
    ],
    [
      base.replace("name: cam", "name: feature-maps\n    layer: '69'"),
      /p\.yaml:7 methods\[0\]\.layer: unknown tensor '69' — did you mean/,
    ],
  ];
  try {
    for (const [text, pattern] of cases) {
      await Deno.writeTextFile(`${dir}/p.yaml`, text);
      const r = await lantern("run", `${dir}/p.yaml`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.deepEqual(await listDir(`${dir}/out`), []);
    }
    await Deno.writeTextFile(`${dir}/p.yaml`, base);
    const ok = await lantern("run", `${dir}/p.yaml`, "--set", "methods[0].target=281");
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await listDir(`${dir}/out`), ["chelsea_cam.npy"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("explain runs end to end on the WebGPU backend (llvmpipe in CI) like on WASM", async () => {
  const { hasWebGpu, maxRelativeError } = await import("./_helpers.ts");
  if (!await hasWebGpu()) {
    console.warn("skipped: no WebGPU adapter (install mesa-vulkan-drivers for llvmpipe)");
    return;
  }
  const out = await Deno.makeTempDir();
  try {
    const maps: Record<string, Float32Array> = {};
    for (const backend of ["wasm", "webgpu"]) {
      const r = await lantern(
        "explain",
        "--model",
        EMOTION,
        "--input",
        "examples/images/faces/grace_hopper_face.png",
        "--method",
        "gradcam",
        "--layer",
        "add_2/add",
        "--backend",
        backend,
        "--out",
        `${out}/${backend}`,
      );
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(await Deno.readTextFile(`${out}/${backend}/results.json`));
      assert.equal(json.model.backend.name, backend);
      maps[backend] =
        decodeNpy(await Deno.readFile(`${out}/${backend}/grace_hopper_face_gradcam.npy`)).data;
    }
    const err = maxRelativeError(maps.webgpu, maps.wasm);
    assert.ok(err <= 1e-4, `webgpu vs wasm Grad-CAM: ${err}`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("the demo pipeline runs on the bundled model and photos", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await lantern("run", "examples/demo.yaml", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    const files = await listDir(out);
    for (const stem of ["astronaut_face", "grace_hopper_face"]) {
      for (
        const f of [
          "cam.png",
          "gradcam.png",
          "integrated-gradients.png",
          "occlusion.png",
          "feature-maps_grid.png",
          "cam.npy",
        ]
      ) {
        assert.ok(files.includes(`${stem}_${f}`), `${stem}_${f} missing`);
      }
    }
    const json = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    assert.equal(json.images[0].predictions[0].label, "happy"); // the astronaut smiles
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
