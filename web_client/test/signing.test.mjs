// Signing the agreement on the signer's device: base64url, RFC 8785 canonical JSON, Ed25519 (Node's WebCrypto).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, randomBytes, verify, webcrypto } from "node:crypto";

import {
  base64url, canonicalJson, canonicalMatches, fromBase64url, sha256Hex, signAgreement, SigningError, verifySignature,
} from "../src/lib/signing.js";

const { subtle } = webcrypto;

// An agreement document as the server drafts it, with the characters canonical JSON must get right.
function sampleDocument() {
  return {
    type: "mediation-repayment-agreement/v1", agreement_id: "agr_0123456789abcdef0123456789abcdef", version: 2,
    case_id: "cas_0123456789abcdef0123456789abcdef", case_number: "MD-20260301-7KQ2ZD",
    lender: '示例商业银行 "Example" <Bank>', borrower: "李伟 \u{1F600}\u00e9", loan_reference: "LN-2026/0042", currency: "CNY",
    settled_amount_minor: 999999999999999, waived_penalties_minor: 0,
    instalments: [{ due_date: "2026-04-01", amount_minor: 499999999999999 }, { due_date: "2026-05-01", amount_minor: 500000000000000 }],
    terms: "第一行\n\t第二行 </script> \\ \u2028 \u007f", drafted_by: "Mediator Wang", drafted_at: "2026-03-01T10:00:00.123456+00:00",
  };
}
// SHA-256 of the same document's canonical form as the server computes it (Python's rfc8785).
const SERVER_SHA256 = "0abc77f7622ec99b45591fbb70950b571527a43b036c08a725f5773b37612d9a";

async function agreementView(document = sampleDocument()) {
  const canonical = canonicalJson(document);
  return { agreement_id: document.agreement_id, version: document.version, state: "draft", document, canonical,
    sha256: await sha256Hex(canonical, subtle), signatures: [], countersigned: false };
}

test("base64url: RFC 4648 §5 without padding, both ways, for every length", () => {
  for (let length = 0; length <= 70; length += 1) {
    const bytes = new Uint8Array(randomBytes(length));
    const text = base64url(bytes);
    assert.equal(text, Buffer.from(bytes).toString("base64url"));
    assert.doesNotMatch(text, /[+/=]/);
    assert.deepEqual(fromBase64url(text), bytes);
  }
  assert.equal(base64url(new Uint8Array([0xfb, 0xff, 0xfe])), "-__-");
  assert.deepEqual(fromBase64url("-__-"), new Uint8Array([0xfb, 0xff, 0xfe]));
  assert.deepEqual(fromBase64url("AQ=="), new Uint8Array([1]));
  for (const bad of ["a+b", "a/b", "A", "A===", "é"]) assert.throws(() => fromBase64url(bad), SigningError, bad);
});

test("the page's canonical JSON is byte for byte the server's (RFC 8785)", async () => {
  const canonical = canonicalJson(sampleDocument());
  assert.equal(await sha256Hex(canonical, subtle), SERVER_SHA256);
  assert.ok(canonical.startsWith('{"agreement_id":"agr_0123456789abcdef0123456789abcdef","borrower":"李伟 \u{1F600}é"'));
  assert.ok(canonical.includes('"terms":"第一行\\n\\t第二行 </script> \\\\ \u2028 \u007f"'));
  assert.equal(canonicalJson({ b: [3, 1.5, -0, 1e21], a: "x" }), '{"a":"x","b":[3,1.5,0,1e+21]}');
});

test("canonicalMatches refuses any text that is not the canonical form of the document shown", () => {
  const document = sampleDocument();
  const canonical = canonicalJson(document);
  assert.ok(canonicalMatches(document, canonical));
  assert.ok(!canonicalMatches(document, JSON.stringify(document)), "key order");
  assert.ok(!canonicalMatches(document, JSON.stringify(JSON.parse(canonical), null, 1)), "whitespace");
  assert.ok(!canonicalMatches(document, canonical.replace("499999999999999", "499999999999990")), "an amount");
  assert.ok(!canonicalMatches({ ...document, terms: `${document.terms} ` }, canonical), "the document changed");
  assert.ok(!canonicalMatches(null, canonical));
  assert.ok(!canonicalMatches(document, undefined));
});

// The party's enrolled device key, as src/lib/possession.js makes it: non-extractable.
const devicePair = () => subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);

test("signAgreement signs the canonical bytes with the enrolled device key; both WebCrypto and OpenSSL verify it", async () => {
  const agreement = await agreementView();
  const pair = await devicePair();
  const body = await signAgreement(agreement, pair, { subtle });
  assert.deepEqual(Object.keys(body).sort(), ["public_key", "signature", "version"]);
  assert.equal(body.version, 2);
  assert.match(body.public_key, /^[A-Za-z0-9_-]{43}$/); // the API's patterns (server/schemas.py SignatureIn)
  assert.match(body.signature, /^[A-Za-z0-9_-]{86}$/);
  assert.ok(await verifySignature(agreement.canonical, body.public_key, body.signature, { subtle }));
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: body.public_key }, format: "jwk" });
  assert.ok(verify(null, Buffer.from(agreement.canonical, "utf8"), key, Buffer.from(body.signature, "base64url")));
  // Not the signature of anything else.
  assert.ok(!verify(null, Buffer.from(`${agreement.canonical} `, "utf8"), key, Buffer.from(body.signature, "base64url")));
  const again = await signAgreement(agreement, pair, { subtle });
  assert.equal(again.public_key, body.public_key, "the signature binds to the device's enrolled key");
  assert.equal(body.public_key, Buffer.from(await subtle.exportKey("raw", pair.publicKey)).toString("base64url"));
});

test("signAgreement refuses to sign what it was not shown", async () => {
  const pair = await devicePair();
  const refuse = async (agreement, why) => {
    await assert.rejects(signAgreement(agreement, pair, { subtle }), (error) => error instanceof SigningError && error.code === "canonical_mismatch", why);
  };
  const agreement = await agreementView();
  await refuse({ ...agreement, canonical: agreement.canonical.replace("500000000000000", "5") }, "text differs from the document");
  await refuse({ ...agreement, document: { ...agreement.document, waived_penalties_minor: 1 } }, "document differs from the text");
  await refuse({ ...agreement, sha256: "0".repeat(64) }, "digest differs");
  await refuse({ ...agreement, version: 3 }, "another version");
  await assert.rejects(signAgreement(agreement, pair, { subtle: null }), (error) => error.code === "webcrypto_unsupported");
});
