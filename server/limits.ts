/**
 * The service's safety limits: a capped streaming body read, a concurrency gate that refuses
 * with 503 + `Retry-After` when saturated, and the error type that carries an HTTP status.
 * Web-standard only.
 *
 * @module
 */

/** Limits of the HTTP service; every field has a default (see {@linkcode DEFAULT_LIMITS}). */
export interface Limits {
  /** Largest request body in bytes (413 above it). */
  readonly maxBodyBytes: number;
  /** Largest `width * height` of an image, read from its header before decoding (413 above). */
  readonly maxPixels: number;
  /** Milliseconds a request may take, queueing included (503 after it). */
  readonly timeoutMs: number;
  /** Explanations computed at once. */
  readonly concurrency: number;
  /** Requests that may wait for a free slot; more are refused with 503. */
  readonly queue: number;
  /** Seconds sent in `Retry-After` with a 503. */
  readonly retryAfterS: number;
  /** Largest `internal_batch` a client may ask for (it bounds peak memory). */
  readonly maxInternalBatch: number;
  /** Largest `render.size` (smallest side of the PNG) a client may ask for. */
  readonly maxRenderSize: number;
}

/** Defaults: 10 MiB bodies, 16 megapixels, 30 s, 2 at once, 16 waiting. */
export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 10 * 1024 * 1024,
  maxPixels: 16_000_000,
  timeoutMs: 30_000,
  concurrency: 2,
  queue: 16,
  retryAfterS: 1,
  maxInternalBatch: 64,
  maxRenderSize: 1024,
};

/** An error answered with `status` and a JSON body `{ "error": message, "status": status }`. */
export class HttpError extends Error {
  /** Make an error answered with `status`; `headers` are added to the response. */
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/**
 * Read a request body into memory, refusing with 413 as soon as it passes `maxBytes`: a declared
 * `Content-Length` over the cap is refused before reading anything, and an undeclared (chunked)
 * body is cut off at the cap, so no client can make the server buffer more.
 */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = (size: string) =>
    new HttpError(
      413,
      `Cannot read request body: ${size} is over the limit of ${maxBytes} bytes — send a smaller image`,
    );
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(`${declared} bytes`);
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw new HttpError(400, `Cannot read request body: ${(e as Error).message}`);
    }
    if (chunk.done) break;
    total += chunk.value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(`more than ${maxBytes} bytes`);
    }
    chunks.push(chunk.value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * A counting semaphore with a bounded wait queue: `concurrency` holders at once, `queue` more
 * waiting in arrival order, and an immediate refusal beyond that.
 */
export class Gate {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  /** A gate letting `concurrency` through with up to `queue` waiting. */
  constructor(readonly concurrency: number, readonly queue: number) {}

  /** Holders now. */
  get running(): number {
    return this.#running;
  }

  /** Waiters now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * A promise of a release function once a slot is free, or `undefined` (refuse the request)
   * when every slot is taken and the queue is full. Call the release exactly once.
   */
  enter(): Promise<() => void> | undefined {
    if (this.#running < this.concurrency) {
      this.#running++;
      return Promise.resolve(this.#release());
    }
    if (this.#waiting.length >= this.queue) return undefined;
    return new Promise((resolve) => this.#waiting.push(() => resolve(this.#release())));
  }

  #release(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter, so `running` never dips in between.
      if (next) next();
      else this.#running--;
    };
  }
}
