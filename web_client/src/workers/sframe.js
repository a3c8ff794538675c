// Entry of the media-encryption worker (bundled on its own as dist/workers/sframe.js by build.mjs):
// the page's MediaEncryption (src/lib/e2ee/sframe.js) sends it keys; Chromium hands it every
// RTCRtpScriptTransform made with it. Keys never leave it, and it never posts a frame back.
import { FrameCrypto } from "../lib/e2ee/transform.js";

const scope = /** @type {any} */ (self);
const frames = new FrameCrypto();

scope.onrtctransform = (/** @type {any} */ event) => {
  frames.run(event.transformer).catch((/** @type {unknown} */ error) => {
    scope.postMessage({ event: "transform_failed", message: String(error) });
  });
};

scope.onmessage = async (/** @type {MessageEvent} */ event) => {
  const { id, command } = event.data || {};
  try {
    const result = await frames.handle(command);
    scope.postMessage({ id, result });
  } catch (error) {
    scope.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
};
