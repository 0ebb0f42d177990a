import { bytes } from "./module.ts";
self.onmessage = async (e: MessageEvent) => {
  const mem = e.data.mem as WebAssembly.Memory;
  const { instance } = await WebAssembly.instantiate(bytes, { env: { mem } });
  const spin = instance.exports.spin as (a: number, b: number) => number;
  (self as unknown as Worker).postMessage({ ready: true });
  try {
    (self as unknown as Worker).postMessage({ ok: spin(0, e.data.addr) });
  } catch (err) {
    (self as unknown as Worker).postMessage({ error: String(err) });
  }
};
