/**
 * `lantern run PIPELINE --watch`: editing a plugin file re-runs the pipeline within a second on the
 * bundled emotion model, reloading only that plugin and keeping the model loaded.
 */
import assert from "node:assert/strict";
import { decodeNpy } from "../kernels/npy.ts";
import { scaffold } from "../cli/new.ts";
import { ROOT } from "./_helpers.ts";

/** Lines of a child's stdout, with the time each arrived. */
async function* timedLines(stream: ReadableStream<Uint8Array>) {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      yield { line: buffer.slice(0, nl), at: performance.now() };
      buffer = buffer.slice(nl + 1);
    }
  }
}

Deno.test("--watch re-runs within a second of a plugin edit without reloading the model", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lantern-watch-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      "--config",
      `${ROOT}/deno.json`,
      `${ROOT}/cli/main.ts`,
      "run",
      // "./": the pipeline's path must be normalised to match what Deno.watchFs reports.
      "./watched.yaml",
      "--watch",
    ],
    cwd: dir,
    stdout: "piped",
    stderr: "inherit",
  });
  await scaffold("method", "watched", { dir });
  const plugin = `${dir}/watched.ts`;
  const npy = `${dir}/out/watched/astronaut_face_watched.npy`;
  const process = child.spawn();
  const lines = timedLines(process.stdout);
  const seen: string[] = [];
  const waitFor = async (re: RegExp) => {
    // next() rather than for-await: leaving a for-await loop would close the generator.
    for (let r = await lines.next(); !r.done; r = await lines.next()) {
      seen.push(r.value.line);
      if (re.test(r.value.line)) return r.value.at;
    }
    throw new Error(`watch ended before ${re}: ${seen.join(" | ")}`);
  };
  try {
    await waitFor(/^\[watch\] run 1: 1 method\(s\)/);
    const first = decodeNpy(await Deno.readFile(npy)).data;
    const source = await Deno.readTextFile(plugin);
    const edited = source.replace("g * x.data[i]", "2 * g * x.data[i]");
    assert.notEqual(edited, source);
    const edit = performance.now();
    await Deno.writeTextFile(plugin, edited);
    const done = await waitFor(/^\[watch\] run 2: 1 method\(s\)/);
    const latency = done - edit;
    console.log(`re-run finished ${latency.toFixed(0)} ms after the edit`);
    assert.ok(latency < 1000, `re-run took ${latency} ms`);
    const second = decodeNpy(await Deno.readFile(npy)).data;
    assert.ok(second.every((v, i) => Math.abs(v - 2 * first[i]) <= 1e-6 * Math.abs(v) + 1e-12));
    assert.equal(
      seen.filter((l) => l.startsWith("[watch] loaded model")).length,
      1,
      seen.join("\n"),
    );
    assert.ok(seen.some((l) => l === `[watch] reloading plugin ${plugin}`), seen.join("\n"));
    await Deno.writeTextFile(`${dir}/watched.yaml`, "# edited\n", { append: true });
    await waitFor(/^\[watch\] run 3: 1 method\(s\)/);
  } finally {
    process.kill("SIGTERM");
    await process.status;
    await lines.return(undefined);
    await Deno.remove(dir, { recursive: true });
  }
});
