import assert from "node:assert/strict";
import { test } from "node:test";
import { calendarDaysBetween, untilStart } from "../src/lib/room/time.js";
import { keyFingerprint } from "../src/lib/signing.js";

const start = new Date("2026-12-03T07:00:00Z");
const at = (iso) => new Date(iso).getTime();

test("untilStart counts down to the start, rounding up to the minute", () => {
  assert.deepEqual(untilStart(start, 60, at("2026-12-02T04:59:30Z")),
    { phase: "before", totalMinutes: 1561, days: 1, hours: 2, minutes: 1 });
  assert.deepEqual(untilStart(start, 60, at("2026-12-03T06:59:01Z")), { phase: "before", totalMinutes: 1, days: 0, hours: 0, minutes: 1 });
});

test("untilStart says how long the session has run, and when its time has passed", () => {
  assert.equal(untilStart(start, 60, at("2026-12-03T07:25:00Z")).phase, "during");
  assert.equal(untilStart(start, 60, at("2026-12-03T07:25:00Z")).totalMinutes, 25);
  assert.equal(untilStart(start, 60, at("2026-12-03T08:00:00Z")).phase, "after");
  assert.equal(untilStart(start, null, at("2026-12-04T08:00:00Z")).phase, "during"); // no planned length: never "after"
});

test("calendarDaysBetween counts local dates, not 24-hour spans", () => {
  const evening = new Date(2026, 11, 2, 23, 30);
  assert.equal(calendarDaysBetween(evening, new Date(2026, 11, 3, 0, 15)), 1);
  assert.equal(calendarDaysBetween(evening, new Date(2026, 11, 2, 8, 0)), 0);
  assert.equal(calendarDaysBetween(evening, new Date(2026, 11, 1, 8, 0)), -1);
});

test("keyFingerprint is the SHA-256 of the raw key in groups of four, as the PDF prints it", async () => {
  // 32 zero bytes: SHA-256 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925
  const fingerprint = await keyFingerprint("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  assert.equal(fingerprint, "6668 7aad f862 bd77 6c8f c18b 8e9f 8e20 0897 1485 6ee2 33b3 902a 591d 0d5f 2925");
});
