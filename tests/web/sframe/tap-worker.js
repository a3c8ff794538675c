// The wire as a receiver without keys sees it: the first video frames of a connection, as they came
// off the depacketizer, posted to the page; no frame is passed on to the decoder.
const wanted = 24;
let taken = 0;
self.onrtctransform = (event) => {
  const { readable, writable } = event.transformer;
  readable.pipeThrough(new TransformStream({
    transform(frame) {
      if (typeof frame.type === "string" && taken < wanted) {
        taken += 1;
        self.postMessage({ type: frame.type, data: Array.from(new Uint8Array(frame.data)) });
      }
    },
  })).pipeTo(writable);
};
