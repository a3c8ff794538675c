// The recipient statement's signature, against what recording/records/statement.py signs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { StatementError, verifyStatement } from "../src/lib/compliance/statement.js";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/compliance-statement.json", import.meta.url), "utf8"));
const served = fixture.served;

test("statement signed by the audit key verifies, pinned or not", async () => {
  const { statement, pinned } = await verifyStatement(served);
  assert.equal(pinned, false);
  assert.equal(statement.version, 2);
  assert.equal(statement.recipients[0].username, "officer.chen");
  assert.equal((await verifyStatement(served, served.key_id)).pinned, true);
});

test("statement with a recipient swapped in is refused as a bad signature", async () => {
  const recipient = JSON.parse(served.statement).recipients[0].recipient;
  const forged = { ...served, statement: served.statement.replace(recipient, fixture.other_recipient) };
  await assert.rejects(verifyStatement(forged), (error) => error instanceof StatementError
    && error.code === "statement_bad_signature");
});

test("statement signed by a key other than the pinned one is refused", async () => {
  await assert.rejects(verifyStatement(served, "0123456789abcdef"), (error) => error instanceof StatementError
    && error.code === "statement_untrusted_key");
});

test("statement with a signature that is not hex is refused as malformed", async () => {
  await assert.rejects(verifyStatement({ ...served, signature: "zz" }), (error) => error instanceof StatementError
    && error.code === "statement_malformed");
});
