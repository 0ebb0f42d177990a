/**
 * The HTTP service on a real `Deno.serve` listener on loopback (started the way `lantern serve`
 * starts it): every endpoint, every response checked against the OpenAPI document, the bad
 * requests each answered with a 4xx JSON error while the server keeps serving, saturation and
 * timeouts answered with 503 + Retry-After.
 */
import assert from "node:assert/strict";
import { parseModelFlag, serve } from "../cli/serve.ts";
import { parseServerConfig } from "../server/config.ts";
import { explain, loadModel } from "../pipeline/explain.ts";
import { decodeNpy } from "../kernels/npy.ts";
import { EMOTION, maxAbsError, ROOT } from "./_helpers.ts";
import { checkResponse, read, type ReadResponse, type Schema, validate } from "./_openapi.ts";

const FACE = `${ROOT}/examples/images/faces/astronaut_face.png`;
const face = Deno.readFileSync(FACE);

interface Running {
  readonly url: string;
  close(): Promise<void>;
}

/** Start the service with `limits` (config file keys) on a free loopback port. */
async function start(limits: Record<string, number> = {}): Promise<Running> {
  const dir = await Deno.makeTempDir({ prefix: "lantern-serve-" });
  const lines = Object.entries(limits).map(([k, v]) => `  ${k}: ${v}`);
  await Deno.writeTextFile(
    `${dir}/server.yaml`,
    `models:\n  emotion:\n    source: ${EMOTION}\n    backend: wasm\n` +
      (lines.length ? `limits:\n${lines.join("\n")}\n` : "") + "log: false\n",
  );
  const server = await serve({ port: 0, model: [], config: `${dir}/server.yaml` });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

let doc: Schema;

async function call(
  base: string,
  method: string,
  path: string,
  init: RequestInit = {},
): Promise<ReadResponse> {
  const r = await read(await fetch(`${base}${path}`, { method, ...init }));
  checkResponse(doc, method, path.split("?")[0], r);
  return r;
}

function png(body: Uint8Array = face): RequestInit {
  return { body: body as Uint8Array<ArrayBuffer>, headers: { "content-type": "image/png" } };
}

function form(options: Record<string, unknown>, image: Uint8Array = face): RequestInit {
  const fd = new FormData();
  fd.append("image", new File([image as Uint8Array<ArrayBuffer>], "astronaut_face.png"));
  fd.append("options", JSON.stringify(options));
  return { body: fd };
}

/** A PNG header declaring `w`×`h` with no pixel data (a decompression bomb's first bytes). */
function pngBomb(w: number, h: number): Uint8Array {
  const b = new Uint8Array(33);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const v = new DataView(b.buffer);
  v.setUint32(16, w);
  v.setUint32(20, h);
  b.set([8, 2, 0, 0, 0], 24);
  return b;
}

/** A JPEG whose frame header declares `w`×`h`. */
function jpegBomb(w: number, h: number): Uint8Array {
  return new Uint8Array([
    0xff,
    0xd8,
    0xff,
    0xc0,
    0,
    17,
    8,
    h >> 8,
    h & 255,
    w >> 8,
    w & 255,
    3,
    1,
    0x11,
    0,
    2,
    0x11,
    0,
    3,
    0x11,
    0,
    0xff,
    0xd9,
  ]);
}

Deno.test("the service answers every endpoint as its OpenAPI document says", async () => {
  const s = await start();
  try {
    const raw = await read(await fetch(`${s.url}/openapi.json`));
    doc = raw.json as Schema;
    checkResponse(doc, "GET", "/openapi.json", raw);
    assert.equal(doc.openapi, "3.1.0");

    const health = await call(s.url, "GET", "/healthz");
    assert.deepEqual(health.json, {
      status: "ok",
      running: 0,
      queued: 0,
      models: { emotion: true },
    });
    const models = await call(s.url, "GET", "/v1/models");
    // deno-lint-ignore no-explicit-any
    const m = (models.json as any).models[0];
    assert.equal(m.name, "emotion");
    assert.deepEqual(m.input_shape, [-1, 1, 64, 64]);
    assert.equal(m.labels[3], "happy");
    const methods = await call(s.url, "GET", "/v1/methods");
    // deno-lint-ignore no-explicit-any
    const list = (methods.json as any).methods as { name: string; params: Schema }[];
    const ig = list.find((x) => x.name === "integrated-gradients")!;
    // deno-lint-ignore no-explicit-any
    assert.equal((ig.params as any).properties.steps.default, 50);
    assert.ok(list.some((x) => x.name === "gradcam"));

    // Raw body + query, JSON: the map equals what the scripting API computes in-process.
    const model = await loadModel(EMOTION, { backend: "wasm" });
    const local = await explain(model, face, { method: "gradcam" });
    const j = await call(s.url, "POST", "/v1/explain?method=gradcam&format=json", png());
    // deno-lint-ignore no-explicit-any
    const body = j.json as any;
    assert.deepEqual(body.map.dims, [1, 1, 8, 8]);
    // The validator behind every check here does reject what the document forbids.
    const schema = { $ref: "#/components/schemas/ExplainResult" };
    assert.match(
      validate({ ...body, extra: 1 }, schema, doc).join(),
      /unexpected property "extra"/,
    );
    assert.match(validate({ ...body, targets: ["3"] }, schema, doc).join(), /expected integer/);
    assert.match(validate({ ...body, map: undefined }, schema, doc).join(), /expected object/);
    assert.deepEqual(body.targets, local.explanation.targets);
    assert.equal(body.predictions[0][0].label, local.predictions[0][0].label);
    assert.ok(maxAbsError(body.map.data, local.map.data) < 1e-6);

    // Raw body + query, PNG: the same bytes the in-process render gives.
    const p = await call(s.url, "POST", "/v1/explain?method=gradcam", png());
    assert.equal(p.type, "image/png");
    assert.deepEqual(p.bytes, await local.png());
    assert.equal(p.headers.get("x-lantern-targets"), String(local.explanation.targets[0]));

    // Multipart with a JSON options field, method params and render params; .npy out.
    const sal = await explain(model, face, { method: "saliency", target: 0, abs: false });
    const n = await call(
      s.url,
      "POST",
      "/v1/explain",
      form({ method: "saliency", target: 0, abs: false, format: "npy" }),
    );
    const npy = decodeNpy(n.bytes);
    assert.deepEqual(npy.dims, [1, 1, 64, 64]);
    assert.ok(maxAbsError(npy.data, sal.map.data) < 1e-6);
    const big = await call(
      s.url,
      "POST",
      "/v1/explain",
      form({ method: "gradcam", render: { size: 128, colormap: "viridis" } }),
    );
    assert.deepEqual([...big.bytes.subarray(16, 24)], [0, 0, 0, 128, 0, 0, 0, 128]);
    await model.dispose();

    // Query values are typed by the method's schema: relu=false is a boolean, layer a string.
    const q = await call(s.url, "POST", "/v1/explain?method=gradcam&relu=false&format=json", png());
    // deno-lint-ignore no-explicit-any
    assert.ok((q.json as any).range[0] <= 0);
  } finally {
    await s.close();
  }
});

Deno.test("long jobs stream progress as NDJSON and server-sent events", async () => {
  const s = await start();
  try {
    const nd = await call(
      s.url,
      "POST",
      "/v1/explain",
      { ...form({ method: "occlusion", window: 16, stride: 8, format: "png" }) },
    );
    assert.equal(nd.type, "image/png"); // no Accept: a plain answer
    const r = await call(s.url, "POST", "/v1/explain", {
      ...form({ method: "occlusion", window: 16, stride: 8, format: "png" }),
      headers: { accept: "application/x-ndjson" },
    });
    assert.equal(r.type, "application/x-ndjson");
    const lines = new TextDecoder().decode(r.bytes).trim().split("\n").map((l) => JSON.parse(l));
    const progress = lines.filter((l) => l.progress).map((l) => l.progress);
    assert.ok(progress.length >= 2);
    assert.equal(progress.at(-1).done, progress.at(-1).total);
    assert.equal(progress.at(-1).total, 49); // (64 − 16) / 8 + 1 = 7 positions per axis
    const result = lines.at(-1).result;
    assert.deepEqual(result.map.dims, [1, 1, 64, 64]);
    const pngBytes = Uint8Array.from(atob(result.png), (c) => c.charCodeAt(0));
    assert.equal(pngBytes[1], 0x50);

    const sse = await fetch(`${s.url}/v1/explain?method=occlusion&window=16&stride=8&stream=sse`, {
      method: "POST",
      ...png(),
    });
    assert.equal(sse.headers.get("content-type"), "text/event-stream");
    const events = (await sse.text()).trim().split("\n\n").map((e) => e.split("\n")[0]);
    assert.equal(events.at(-1), "event: result");
    assert.ok(events.includes("event: progress"));
  } finally {
    await s.close();
  }
});

Deno.test("bad requests get a 4xx JSON error and the server keeps serving", async () => {
  const s = await start({ max_body_bytes: 200_000 });
  const expect = async (status: number, pattern: RegExp, path: string, init: RequestInit) => {
    const r = await call(s.url, "POST", path, init);
    assert.equal(r.status, status, JSON.stringify(r.json));
    // deno-lint-ignore no-explicit-any
    const body = r.json as any;
    assert.equal(body.status, status);
    assert.match(body.error, pattern);
  };
  try {
    await expect(415, /content type "text\/plain"/, "/v1/explain?method=gradcam", {
      body: "hello",
      headers: { "content-type": "text/plain" },
    });
    await expect(400, /corrupt PNG data/, "/v1/explain?method=gradcam", png(face.slice(0, 5000)));
    const jpeg = Deno.readFileSync(`${ROOT}/examples/images/grace_hopper.jpg`);
    await expect(400, /corrupt JPEG data \(truncated/, "/v1/explain?method=gradcam", {
      body: jpeg.slice(0, jpeg.length >> 1),
      headers: { "content-type": "image/jpeg" },
    });
    await expect(400, /not a PNG or JPEG/, "/v1/explain?method=gradcam", png(face.slice(100)));
    await expect(413, /100000x100000/, "/v1/explain?method=gradcam", png(pngBomb(1e5, 1e5)));
    await expect(413, /60000x60000/, "/v1/explain?method=gradcam", {
      body: jpegBomb(60000, 60000) as Uint8Array<ArrayBuffer>,
      headers: { "content-type": "image/jpeg" },
    });
    await expect(
      400,
      /Unknown method plugin 'gradkam'.*gradcam/,
      "/v1/explain",
      form({ method: "gradkam" }),
    );
    await expect(
      400,
      /unknown parameter 'stpes'.*steps/,
      "/v1/explain",
      form({
        method: "integrated-gradients",
        stpes: 8,
      }),
    );
    await expect(400, /steps/, "/v1/explain", form({ method: "integrated-gradients", steps: -1 }));
    await expect(
      400,
      /target 99 is out of range/,
      "/v1/explain",
      form({ method: "gradcam", target: 99 }),
    );
    await expect(
      400,
      /unknown tensor 'nope'/,
      "/v1/explain",
      form({ method: "gradcam", layer: "nope" }),
    );
    await expect(
      400,
      /colormap/,
      "/v1/explain",
      form({ method: "gradcam", render: { colormap: "x" } }),
    );
    await expect(
      413,
      /over the limit of 200000 bytes/,
      "/v1/explain?method=gradcam",
      png(
        new Uint8Array(300_000),
      ),
    );
    // Models only from the allow-list; no paths or URLs from clients.
    await expect(
      400,
      /not one of this server's models \(emotion\)/,
      "/v1/explain",
      form({
        method: "gradcam",
        model: "https://example.com/evil.onnx",
      }),
    );
    await expect(
      400,
      /no file system here/,
      "/v1/explain",
      form({
        method: "integrated-gradients",
        baseline: "/etc/passwd",
      }),
    );
    await expect(
      400,
      /"preprocess" is set by the server/,
      "/v1/explain",
      form({
        method: "gradcam",
        preprocess: { size: 100000 },
      }),
    );
    await expect(400, /missing "method"/, "/v1/explain", png());
    await expect(400, /no image/, "/v1/explain", form({ method: "gradcam" }, new Uint8Array(0)));
    await expect(
      400,
      /Cannot parse form field "options"/,
      "/v1/explain",
      (() => {
        const fd = new FormData();
        fd.append("image", new File([face], "f.png"));
        fd.append("options", "{not json");
        return { body: fd };
      })(),
    );
    await expect(
      400,
      /internal_batch 100000 is over the limit/,
      "/v1/explain",
      form({
        method: "saliency",
        internal_batch: 100000,
      }),
    );
    for (const [method, path, status] of [["GET", "/v1/explain", 405], ["GET", "/x", 404]]) {
      const r = await read(await fetch(`${s.url}${path}`, { method: method as string }));
      assert.equal(r.status, status);
      // Routes the document does not list still answer with its Error schema.
      assert.deepEqual(validate(r.json, { $ref: "#/components/schemas/Error" }, doc), []);
      // deno-lint-ignore no-explicit-any
      assert.equal((r.json as any).status, status);
    }
    const ok = await call(s.url, "POST", "/v1/explain?method=gradcam", png());
    assert.equal(ok.status, 200);
    assert.equal(ok.type, "image/png");
  } finally {
    await s.close();
  }
});

Deno.test("saturation and timeouts answer 503 with Retry-After, then serving resumes", async () => {
  const s = await start({ concurrency: 1, queue: 0, retry_after_s: 2 });
  try {
    const slow = form({ method: "occlusion", window: 16, stride: 8 });
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => call(s.url, "POST", "/v1/explain", slow)),
    );
    const statuses = answers.map((a) => a.status).sort();
    assert.equal(statuses[0], 200);
    assert.ok(statuses.includes(503), `statuses ${statuses}`);
    const refused = answers.find((a) => a.status === 503)!;
    assert.equal(refused.headers.get("retry-after"), "2");
    // deno-lint-ignore no-explicit-any
    assert.match((refused.json as any).error, /retry after 2 s/);
  } finally {
    await s.close();
  }
  const t = await start({ timeout_ms: 300 });
  try {
    const r = await call(
      t.url,
      "POST",
      "/v1/explain",
      form({ method: "occlusion", window: 4, stride: 1 }),
    );
    assert.equal(r.status, 503);
    // deno-lint-ignore no-explicit-any
    assert.match((r.json as any).error, /timed out after 300 ms/);
    // The stopped job gives its slot back at its next progress report.
    let h: ReadResponse;
    do {
      await new Promise((ok) => setTimeout(ok, 50));
      h = await call(t.url, "GET", "/healthz");
      // deno-lint-ignore no-explicit-any
    } while ((h.json as any).running > 0);
    const ok = await call(t.url, "POST", "/v1/explain?method=gradcam", png());
    assert.equal(ok.status, 200);
  } finally {
    await t.close();
  }
});

Deno.test("config file and --model errors name the line, the key and the fix", () => {
  const bad = (text: string) => {
    try {
      parseServerConfig(text, { file: "s.yaml" });
    } catch (e) {
      return (e as Error).message;
    }
    return "no error";
  };
  assert.equal(
    bad("models:\n  a:\n    source: x\n    sha256: abc\n"),
    "s.yaml:4 models.a.sha256: must be 64 hex digits",
  );
  assert.equal(
    bad("models:\n  a: {source: x}\nlimits: {concurency: 2}\n"),
    "s.yaml:3 limits: unknown parameter 'concurency'",
  );
  assert.match(
    bad("models:\n  a: {source: x, preprocess: {preset: rgb}}\n"),
    /^s.yaml:2 models.a.preprocess.preset:/,
  );
  assert.match(
    bad("models:\n  a: {source: x}\ndefault_model: b\n"),
    /"b" is not one of the models \(a\)/,
  );
  const ok = parseServerConfig("models:\n  a: {source: m.onnx}\nlimits: {timeout_ms: 5}\n", {
    baseDir: "/srv",
  });
  assert.deepEqual(ok.models.a.source, "/srv/m.onnx");
  assert.deepEqual(ok.limits, { timeoutMs: 5 });
  assert.deepEqual(parseModelFlag("emotion=https://x/e.onnx"), ["emotion", "https://x/e.onnx"]);
  assert.deepEqual(parseModelFlag("models/emotion.onnx"), ["emotion", "models/emotion.onnx"]);
  assert.throws(() => parseModelFlag("a b=x"), /expected NAME=PATH_OR_URL/);
});
