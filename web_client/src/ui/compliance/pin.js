// The only thing the compliance page stores: per log origin, the last audit checkpoint it accepted
// (public data: a signed note) and the witness keys and quorum it requires. Never a key of the officer's.
import { parseNote } from "../../lib/compliance/checkpoint.js";

// The pin (docs/records.md, "Pinning"): per log origin, the last checkpoint note this browser accepted and
// the witness keys and quorum it requires, in local storage. The first use takes the server's witnesses
// (with the checkpoint_not_pinned warning); from then on the stored ones are required.
const PIN_PREFIX = "mediation-compliance-pin:";

export function readPin(origin) {
  try {
    const stored = JSON.parse(localStorage.getItem(PIN_PREFIX + origin) ?? "null");
    if (!stored) return null;
    return { head: parseNote(stored.note).head, witnessKeys: stored.witnessKeys ?? [], quorum: stored.quorum ?? 0 };
  } catch {
    return null; // unreadable storage counts as no pin: the warning says so
  }
}

export function storePin(origin, note, witnessKeys, quorum) {
  localStorage.setItem(PIN_PREFIX + origin, JSON.stringify({ note, witnessKeys, quorum }));
}

