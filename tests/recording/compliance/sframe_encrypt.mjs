// Encrypts media frames as a page's media-encryption worker does (web_client/src/lib/e2ee), for the
// Python tests: reads {base_key, kid, frames: [{kind, data}]} (bytes in hex) as JSON on stdin and
// writes {frames: [hex]} to stdout.
import { FrameCrypto } from "../../../web_client/src/lib/e2ee/transform.js";
import { importBaseKey } from "../../../web_client/src/lib/e2ee/frame.js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const sender = new FrameCrypto();
await sender.setSendKey(input.kid, await importBaseKey(Uint8Array.from(Buffer.from(input.base_key, "hex"))));
const frames = [];
for (const { kind, data } of input.frames) {
  const out = await sender.encrypt(kind, Uint8Array.from(Buffer.from(data, "hex")));
  frames.push(Buffer.from(/** @type {Uint8Array} */ (out)).toString("hex"));
}
process.stdout.write(JSON.stringify({ frames }));
