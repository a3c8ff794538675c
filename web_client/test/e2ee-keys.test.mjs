// The key layer between three sessions wired as the node would relay them: keys reach the channel's
// members only, chat decrypts for them and for nobody else, the security code follows keys and members.
import assert from "node:assert/strict";
import { test } from "node:test";

import { E2eeSession, e2eeSupported, securityCode } from "../src/lib/e2ee/keys.js";

const SESSION = "ses_0123";

/** Three sessions whose share_keys go to the named members who are in the channel (as the node does). */
async function trio({ inCaucus = () => true } = {}) {
  /** @type {Map<string, E2eeSession>} */
  const pages = new Map();
  /** @type {any[]} */
  const relayed = [];
  const sealed = [];
  for (const id of ["usr_m", "pty_b", "pty_r"]) {
    const page = new E2eeSession({
      sessionId: SESSION,
      share: async (payload) => {
        for (const { participant_id: to, wrapped } of payload.keys) {
          if (payload.channel === "caucus" && !inCaucus(to)) continue;
          const notice = { participant_id: id, public_key: page.publicKey, channel: payload.channel,
            epoch: payload.epoch, kid: payload.kid, wrapped };
          relayed.push({ to, notice });
          await pages.get(to).acceptShared(notice);
        }
      },
      seal: async (key) => { sealed.push({ ...key, baseKey: Uint8Array.from(key.baseKey) }); },
    });
    page.participantId = id;
    await page.start();
    pages.set(id, page);
  }
  const roster = (caucus = null) => ({
    participants: [...pages.values()].map((p) => ({ participant_id: p.participantId, public_key: p.publicKey,
      status: "admitted", role: p.participantId.startsWith("usr") ? "mediator" : "borrower", connected: true })),
    caucus: caucus ? { active: true, members: caucus } : { active: false },
  });
  return { pages, relayed, sealed, roster };
}

test("e2ee: X25519 is available here", async () => {
  assert.equal(await e2eeSupported(), true);
});

test("e2ee: chat from one page decrypts on the others, never under another sender's name", async () => {
  const { pages, sealed, roster } = await trio();
  for (const page of pages.values()) await page.updateRoster(roster(), "main");
  // Each page made one key, sealed it for compliance, and each other page holds it.
  assert.equal(sealed.length, 3);
  const borrower = pages.get("pty_b");
  const sent = await borrower.encryptChat("main", "we could settle at 41,250");
  const message = { participant_id: "pty_b", channel: "main", ...sent };
  for (const id of ["usr_m", "pty_r", "pty_b"]) {
    assert.equal(await pages.get(id).decryptChat(message), "we could settle at 41,250");
  }
  assert.equal(await pages.get("usr_m").decryptChat({ ...message, participant_id: "pty_r" }), null);
  const flipped = sent.ciphertext.slice(0, -2) + (sent.ciphertext.endsWith("AA") ? "AB" : "AA");
  assert.equal(await pages.get("usr_m").decryptChat({ ...message, ciphertext: flipped }), null);
  // The sealed raw key is the one receivers use: compliance reads what members read.
  const key = pages.get("usr_m").receiveKey(sent.kid);
  assert.equal(key.participantId, "pty_b");
  assert.equal(key.key.extractable, false);
  assert.deepEqual(key.key.usages.sort(), ["deriveBits", "deriveKey"]);
  assert.equal(sealed.find((s) => s.kid === sent.kid).participantId, "pty_b");
});

test("e2ee: a caucus key never reaches the member outside, who cannot decrypt caucus chat", async () => {
  const { pages, roster, relayed } = await trio({ inCaucus: (to) => to !== "pty_r" });
  for (const page of pages.values()) await page.updateRoster(roster(), "main");
  const caucus = roster(["usr_m", "pty_b"]);
  await pages.get("usr_m").updateRoster(caucus, "caucus");
  await pages.get("pty_b").updateRoster(caucus, "caucus");
  await pages.get("pty_r").updateRoster({ ...roster(), caucus: { active: true } }, "main");
  const sent = await pages.get("usr_m").encryptChat("caucus", "private: we could go lower");
  const message = { participant_id: "usr_m", channel: "caucus", ...sent };
  assert.equal(await pages.get("pty_b").decryptChat(message), "private: we could go lower");
  assert.equal(await pages.get("pty_r").decryptChat(message), null);
  assert.ok(!relayed.some(({ to, notice }) => to === "pty_r" && notice.channel === "caucus"));
  // Those left out rotated their main key when the caucus opened.
  assert.notEqual(pages.get("pty_r").currentSendKey("main").epoch, 0);
});

test("e2ee: a key the roster does not show is refused, and the security code tells the pages apart", async () => {
  const { pages, roster } = await trio();
  const honest = roster();
  const intruder = new E2eeSession({ sessionId: SESSION, share: async () => {} });
  intruder.participantId = "pty_b";
  await intruder.start();
  // The node shows the mediator a substituted key for the borrower, and the others the real one.
  const forged = { ...honest, participants: honest.participants.map((p) =>
    p.participant_id === "pty_b" ? { ...p, public_key: intruder.publicKey } : p) };
  await pages.get("usr_m").updateRoster(forged, "main");
  await pages.get("pty_r").updateRoster(honest, "main");
  await pages.get("pty_b").updateRoster(honest, "main");
  assert.notEqual(pages.get("usr_m").code, pages.get("pty_r").code);
  assert.equal(pages.get("pty_b").code, pages.get("pty_r").code);
  assert.match(pages.get("pty_r").code, /^\d{5} \d{5} \d{5} \d{5} \d{5}$/);
  assert.equal(await securityCode(honest.participants), pages.get("pty_r").code);
  // A key wrapped by the substituted device is refused by a page whose roster shows the real one.
  const wrapped = await intruder._wrap(new Uint8Array(32), "pty_r", pages.get("pty_r").publicKey, "main", 0, 5);
  const notice = { participant_id: "pty_b", public_key: intruder.publicKey, channel: "main", epoch: 0, kid: 5, wrapped };
  assert.equal(await pages.get("pty_r").acceptShared(notice), false);
  assert.equal(pages.get("pty_r").receiveKey(5), undefined);
});

test("e2ee: a KID another member already uses is refused", async () => {
  const { pages, roster } = await trio();
  for (const page of pages.values()) await page.updateRoster(roster(), "main");
  const mediator = pages.get("usr_m");
  const kid = pages.get("pty_b").currentSendKey("main").kid;
  const accepted = await mediator.acceptShared({ participant_id: "pty_r", public_key: pages.get("pty_r").publicKey,
    channel: "main", epoch: 9, kid, wrapped: "A".repeat(80) });
  assert.equal(accepted, false);
  assert.equal(mediator.receiveKey(kid).participantId, "pty_b");
});
