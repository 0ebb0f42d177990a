/**
 * The PyTorch side of the bench: `bench/torch_bench.py serve` in a child process that answers one
 * JSON request per line.
 *
 * @module
 */
import { PYTHON, ROOT, TORCH_BENCH } from "./common.ts";

/** One JSON reply of the worker. */
export type Reply = Record<string, unknown>;

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
    }
  }
  if (buffer) yield buffer;
}

/** A running `torch_bench.py serve` process. */
export class TorchWorker {
  #process: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncGenerator<string>;
  /** The greeting. */
  hello: Reply = {};

  /**
   * Start the worker with `threads` intra-op threads. `options.pythonArgs` runs another script
   * that speaks the same protocol (a greeting line, then one JSON reply per request line).
   */
  constructor(threads: number, options: { pythonArgs?: readonly string[] } = {}) {
    this.#process = new Deno.Command(PYTHON, {
      args: [...(options.pythonArgs ?? [TORCH_BENCH, "serve", "--threads", String(threads)])],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#process.stdin.getWriter();
    this.#lines = lines(this.#process.stdout);
  }

  /** Wait for the worker's greeting (versions and threads). */
  async start(): Promise<Reply> {
    this.hello = await this.#read("start");
    return this.hello;
  }

  async #read(what: string): Promise<Reply> {
    for (;;) {
      const next = await this.#lines.next();
      if (next.done) {
        throw new Error(`Cannot ${what} in the PyTorch worker: it exited (see its stderr above)`);
      }
      // Anything else a library prints to stdout is not a reply.
      if (next.value.startsWith("{")) return JSON.parse(next.value) as Reply;
    }
  }

  /** Send one request and wait for its reply; an error reply throws. */
  async request(req: Reply): Promise<Reply> {
    const what = `${req.op} ${req.case ?? req.model ?? ""}`.trim();
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const reply = await this.#read(what);
    if (typeof reply.error === "string") {
      throw new Error(`Cannot ${what} in the PyTorch worker: ${reply.error}`);
    }
    return reply;
  }

  /** Ask the worker to quit and wait for it. */
  async close(): Promise<void> {
    try {
      await this.#writer.write(new TextEncoder().encode('{"op": "quit"}\n'));
      await this.#writer.close();
    } catch { /* already gone */ }
    await this.#process.status;
  }
}
