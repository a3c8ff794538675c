// SFrame (RFC 9605) for media frames: the RFC's test vectors (Appendix C.1 headers, C.3 cipher suite
// 0x0004), the wire format of protected VP8 and Opus frames, and the worker's send and receive rules
// (no send key: nothing sent; unknown KID, forged or replayed frames: dropped and counted).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  clearPrefixLength, deriveFrameKey, derivationLabel, encodeHeader, frameNonce, importBaseKey, openFrame,
  parseHeader, protectMediaFrame, sealFrame, splitMediaFrame, TAG_BYTES,
} from "../src/lib/e2ee/frame.js";
import { FrameCrypto, REPLAY_WINDOW } from "../src/lib/e2ee/transform.js";

const VECTORS = JSON.parse(readFileSync(new URL("./fixtures/sframe-rfc9605.json", import.meta.url), "utf8"));
const hex = (/** @type {string} */ text) => Uint8Array.from(Buffer.from(text, "hex"));
const toHex = (/** @type {Uint8Array} */ bytes) => Buffer.from(bytes).toString("hex");

// A VP8 key frame of 640x480 as an encoder starts one (RFC 6386 §9.1), then a delta frame.
const KEY_FRAME = Uint8Array.of(0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, ...new Array(200).fill(7));
const DELTA_FRAME = Uint8Array.of(0x31, 0x05, 0x00, ...new Array(60).fill(9));
const OPUS_FRAME = Uint8Array.of(0x78, ...new Array(80).fill(3));

async function baseKey(fill = 1) {
  return importBaseKey(new Uint8Array(32).fill(fill));
}

test("header_rfc9605_vectors_encode_and_decode", () => {
  assert.equal(VECTORS.header.length, 289);
  for (const vector of VECTORS.header) {
    const kid = BigInt(vector.kid);
    const ctr = BigInt(vector.ctr);
    assert.equal(toHex(encodeHeader(kid, ctr)), vector.header, `kid ${vector.kid} ctr ${vector.ctr}`);
    const bytes = hex(vector.header);
    assert.deepEqual(parseHeader(bytes), { kid, ctr, size: bytes.length });
  }
});

test("header_truncated_or_not_minimal_is_refused", () => {
  assert.equal(parseHeader(hex("0901")), null); // CTR of two bytes, one present
  assert.equal(parseHeader(hex("8007")), null); // a KID below 8 in an extended field
  assert.equal(parseHeader(hex("090001")), null); // a leading zero byte
  assert.equal(parseHeader(new Uint8Array(0)), null);
  assert.throws(() => encodeHeader(-1, 0), RangeError);
  assert.throws(() => encodeHeader(0, 2 ** 53), RangeError);
});

test("sframe_rfc9605_vector_aes_128_gcm_sha256_128", async () => {
  const [vector] = VECTORS.sframe;
  const kid = BigInt(vector.kid);
  const ctr = BigInt(vector.ctr);
  assert.equal(toHex(derivationLabel("key", kid)), vector.sframe_key_label);
  assert.equal(toHex(derivationLabel("salt", kid)), vector.sframe_salt_label);
  const frameKey = await deriveFrameKey(await importBaseKey(hex(vector.base_key)), kid);
  assert.equal(toHex(frameKey.salt), vector.sframe_salt);
  assert.equal(toHex(frameNonce(frameKey.salt, ctr)), vector.nonce);
  // The derived AES key is not extractable: the ciphertext shows it is the vector's sframe_key.
  const sealed = await sealFrame(frameKey, ctr, hex(vector.metadata), hex(vector.pt));
  assert.equal(toHex(sealed), vector.ct);
  const header = parseHeader(sealed);
  assert.ok(header);
  assert.equal(toHex(await openFrame(frameKey, header, hex(vector.metadata), sealed)), vector.pt);
  const rawKey = await crypto.subtle.importKey("raw", hex(vector.sframe_key), "AES-GCM", false, ["encrypt"]);
  const direct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: hex(vector.nonce), additionalData: hex(vector.aad), tagLength: 128 }, rawKey, hex(vector.pt));
  assert.equal(toHex(sealed.subarray(header.size)), toHex(new Uint8Array(direct)));
});

test("sframe_wrong_metadata_or_flipped_bit_does_not_open", async () => {
  const [vector] = VECTORS.sframe;
  const frameKey = await deriveFrameKey(await importBaseKey(hex(vector.base_key)), BigInt(vector.kid));
  const sealed = hex(vector.ct);
  const header = /** @type {NonNullable<ReturnType<typeof parseHeader>>} */ (parseHeader(sealed));
  await assert.rejects(openFrame(frameKey, header, hex("00"), sealed));
  const flipped = sealed.slice();
  flipped[flipped.length - 1] ^= 1;
  await assert.rejects(openFrame(frameKey, header, hex(vector.metadata), flipped));
});

test("vp8_key_frame_keeps_ten_bytes_clear_delta_three_opus_none", async () => {
  assert.equal(clearPrefixLength("video", KEY_FRAME), 10);
  assert.equal(clearPrefixLength("video", DELTA_FRAME), 3);
  assert.equal(clearPrefixLength("audio", OPUS_FRAME), 0);
  const frameKey = await deriveFrameKey(await baseKey(), 0x2a5f11);
  const key = await protectMediaFrame("video", frameKey, 9, KEY_FRAME);
  assert.deepEqual(key.subarray(0, 10), KEY_FRAME.subarray(0, 10));
  assert.equal(toHex(key.subarray(10, 15)), "a82a5f1109"); // KID of 3 bytes, CTR 9 of 1 byte
  assert.equal(key.length, KEY_FRAME.length + 5 + TAG_BYTES);
  assert.notDeepEqual(key.subarray(15, 15 + 32), KEY_FRAME.subarray(10, 42));
  const delta = await protectMediaFrame("video", frameKey, 10, DELTA_FRAME);
  assert.deepEqual(delta.subarray(0, 3), DELTA_FRAME.subarray(0, 3));
  const audio = await protectMediaFrame("audio", frameKey, 11, OPUS_FRAME);
  assert.equal(toHex(audio.subarray(0, 5)), "a82a5f110b"); // the header first: nothing of Opus in clear
  const parts = splitMediaFrame("video", key);
  assert.ok(parts);
  assert.equal(parts.header.ctr, 9n);
  assert.equal(parts.clear.length, 10);
});

test("vp8_clear_prefix_is_authenticated", async () => {
  const sender = new FrameCrypto();
  const receiver = new FrameCrypto();
  await sender.setSendKey(77, await baseKey());
  await receiver.addReceiveKey(77, await baseKey());
  const sent = /** @type {Uint8Array} */ (await sender.encrypt("video", KEY_FRAME));
  const resized = sent.slice();
  resized[7] ^= 0x01; // the width a node would rewrite
  assert.equal(await receiver.decrypt("video", resized), null);
  assert.equal(receiver.counters.droppedAuth, 1);
  assert.deepEqual(await receiver.decrypt("video", sent), KEY_FRAME);
});

test("sender_without_key_drops_frames_never_sends_clear", async () => {
  const sender = new FrameCrypto();
  assert.equal(await sender.encrypt("video", KEY_FRAME), null);
  assert.equal(await sender.encrypt("audio", OPUS_FRAME), null);
  assert.equal(sender.counters.droppedNoSendKey, 2);
  assert.equal(sender.counters.encrypted, 0);
});

test("sender_counter_increases_across_kinds_and_keys_are_one_way", async () => {
  const sender = new FrameCrypto();
  await sender.setSendKey(300, await baseKey());
  const ctrs = [];
  for (const [kind, frame] of [["video", KEY_FRAME], ["audio", OPUS_FRAME], ["video", DELTA_FRAME], ["audio", OPUS_FRAME]]) {
    const out = await sender.encrypt(/** @type {"audio" | "video"} */ (kind), frame);
    ctrs.push(Number(splitMediaFrame(/** @type {"audio" | "video"} */ (kind), /** @type {Uint8Array} */ (out))?.header.ctr));
  }
  assert.deepEqual(ctrs, [0, 1, 2, 3]);
  // Concurrent frames (one worker, several transforms) never share a CTR.
  const many = await Promise.all(Array.from({ length: 20 }, () => sender.encrypt("audio", OPUS_FRAME)));
  const taken = new Set(many.map((out) => Number(splitMediaFrame("audio", /** @type {Uint8Array} */ (out))?.header.ctr)));
  assert.equal(taken.size, 20);
  // Switching keys and back again continues the first key's counter.
  await sender.setSendKey(301, await baseKey(2));
  await sender.setSendKey(300, await baseKey());
  const again = /** @type {Uint8Array} */ (await sender.encrypt("audio", OPUS_FRAME));
  assert.equal(splitMediaFrame("audio", again)?.header.ctr, 24n);
  await assert.rejects(sender.addReceiveKey(300, await baseKey()), /send key/);
  await assert.rejects(sender.setSendKey(2 ** 48, await baseKey()), RangeError);
});

test("receiver_drops_unknown_kid_wrong_key_and_replays_and_counts_them", async () => {
  const sender = new FrameCrypto();
  await sender.setSendKey(5000, await baseKey(1));
  const frames = [];
  for (let i = 0; i < 4; i++) frames.push(/** @type {Uint8Array} */ (await sender.encrypt("audio", OPUS_FRAME)));

  const none = new FrameCrypto();
  assert.equal(await none.decrypt("audio", frames[0]), null);
  assert.equal(none.counters.droppedNoKey, 1);

  const wrong = new FrameCrypto();
  await wrong.addReceiveKey(5000, await baseKey(2));
  assert.equal(await wrong.decrypt("audio", frames[0]), null);
  assert.equal(wrong.counters.droppedAuth, 1);
  assert.equal(wrong.counters.decrypted, 0);

  const right = new FrameCrypto();
  await right.addReceiveKey(5000, await baseKey(1));
  assert.deepEqual(await right.decrypt("audio", frames[1]), OPUS_FRAME);
  assert.deepEqual(await right.decrypt("audio", frames[0]), OPUS_FRAME); // late, inside the window
  assert.equal(await right.decrypt("audio", frames[1]), null); // replayed
  assert.equal(right.counters.droppedReplay, 1);
  assert.equal(await right.decrypt("audio", OPUS_FRAME.subarray(0, 3)), null);
  assert.equal(right.counters.droppedMalformed, 1);
  right.removeReceiveKey(5000);
  assert.equal(await right.decrypt("audio", frames[2]), null);
  assert.equal(right.counters.droppedNoKey, 1);
  assert.equal(right.counters.decrypted, 2);
});

test("receiver_refuses_frames_older_than_the_window", async () => {
  const frameKey = await deriveFrameKey(await baseKey(), 9);
  const receiver = new FrameCrypto();
  await receiver.addReceiveKey(9, await baseKey());
  const newest = await protectMediaFrame("audio", frameKey, REPLAY_WINDOW + 10, OPUS_FRAME);
  const oldest = await protectMediaFrame("audio", frameKey, 10, OPUS_FRAME);
  const inside = await protectMediaFrame("audio", frameKey, 11, OPUS_FRAME);
  assert.ok(await receiver.decrypt("audio", newest));
  assert.equal(await receiver.decrypt("audio", oldest), null);
  assert.ok(await receiver.decrypt("audio", inside));
  assert.equal(receiver.counters.droppedReplay, 1);
});

test("transform_stream_passes_only_authenticated_frames", async () => {
  const sender = new FrameCrypto();
  await sender.setSendKey(12, await baseKey());
  const receiver = new FrameCrypto();
  await receiver.addReceiveKey(12, await baseKey());
  const input = [{ type: "key", data: KEY_FRAME.slice().buffer }, { type: "delta", data: DELTA_FRAME.slice().buffer },
    { data: OPUS_FRAME.slice().buffer }];
  const wire = await runTransform(sender, "send", input);
  assert.equal(wire.length, 3);
  wire[1].data = new Uint8Array(wire[1].data).map((b, i) => (i === 20 ? b ^ 0xff : b)).buffer; // forged in transit
  const out = await runTransform(receiver, "receive", wire);
  assert.equal(out.length, 2);
  assert.deepEqual(new Uint8Array(out[0].data), KEY_FRAME);
  assert.deepEqual(new Uint8Array(out[1].data), OPUS_FRAME);
  assert.equal(receiver.counters.droppedAuth, 1);
});

/**
 * @param {FrameCrypto} crypto
 * @param {"send" | "receive"} side
 * @param {{type?: string, data: ArrayBuffer}[]} frames
 */
async function runTransform(crypto, side, frames) {
  /** @type {{type?: string, data: ArrayBuffer}[]} */
  const out = [];
  const readable = new ReadableStream({
    start(controller) {
      for (const frame of frames) controller.enqueue(frame);
      controller.close();
    },
  });
  const writable = new WritableStream({ write(frame) { out.push(frame); } });
  await crypto.run({ readable, writable, options: { side } });
  return out;
}

test("transform_stream_drops_a_frame_a_crypto_call_fails_on_and_goes_on", async () => {
  const sender = new FrameCrypto();
  await sender.setSendKey(13, await baseKey());
  sender.nextCtr.set(13, Number.MAX_SAFE_INTEGER); // the counter is spent: nothing more may be sent
  const out = await runTransform(sender, "send", [{ data: OPUS_FRAME.slice().buffer }, { data: OPUS_FRAME.slice().buffer }]);
  assert.deepEqual(out, []);
  assert.equal(sender.counters.droppedError, 2);
  assert.equal(sender.counters.encrypted, 0);
});
