// The application form's checks, the overdue bucket, and local times sent with their offset.
import { test } from "node:test";
import assert from "node:assert/strict";

import { applicationField, buildApplication, overdueBucket, parseDays } from "../src/lib/application.js";
import { addMonths, formatDate, formatDateTime, localInputToIso, toLocalInput } from "../src/lib/dates.js";

const filled = {
  name: "李伟", email: "li.wei@example.cn", phone: "", lender: "示例商业银行", loan_reference: "LN-2026-0042", currency: "CNY",
  principal: "120,000", overdue: "14,500.29", days_overdue: "75", proposal: "  每月还 2,000 元  ",
};

test("a complete application becomes the API's body, amounts in minor units", () => {
  const { body, errors } = buildApplication(filled);
  assert.deepEqual(errors, {});
  assert.deepEqual(body, {
    borrower: { name: "李伟", email: "li.wei@example.cn" }, lender: "示例商业银行", loan_reference: "LN-2026-0042",
    currency: "CNY", principal_minor: 12_000_000, overdue_minor: 1_450_029, days_overdue: 75, proposal: "每月还 2,000 元",
  });
});

test("each field names its own problem", () => {
  const { body, errors } = buildApplication({});
  assert.equal(body, null);
  assert.deepEqual(errors, {
    "borrower.name": "required", "borrower.email": "contact", lender: "required", loan_reference: "required", currency: "required",
    days_overdue: "required",
  });
  const bad = buildApplication({ ...filled, email: "not-an-email", phone: "12", loan_reference: "-bad ref", principal: "0",
    overdue: "1.234", days_overdue: "36501", name: "a\u0007b", proposal: "x".repeat(4001) }).errors;
  assert.deepEqual(bad, {
    "borrower.name": "control", "borrower.email": "email", "borrower.phone": "phone", loan_reference: "loanReference",
    principal_minor: "positive", overdue_minor: "amount.decimals", days_overdue: "days", proposal: "tooLong",
  });
  assert.deepEqual(buildApplication({ ...filled, email: "", phone: "+86 138 0013 8000" }).errors, {});
  assert.equal(buildApplication({ ...filled, principal: "" }).errors.principal_minor, "required");
});

test("the overdue bucket: short under 30 days, medium 30–90, long over 90", () => {
  assert.deepEqual([0, 29, 30, 90, 91, 36500].map(overdueBucket), ["short", "short", "medium", "medium", "long", "long"]);
  assert.deepEqual(["12", " 7 ", "1.5", "-1", "abc", "36501", ""].map(parseDays), [12, 7, null, null, null, null, null]);
});

test("a 422's field maps onto the form's field", () => {
  assert.equal(applicationField("borrower"), "borrower.email"); // "give an email or a phone number"
  assert.equal(applicationField("borrower.phone"), "borrower.phone");
  assert.equal(applicationField("principal_minor"), "principal_minor");
  assert.equal(applicationField("body"), null);
  assert.equal(applicationField(null), null);
});

test("a local date-time input is sent as ISO 8601 with that moment's offset", () => {
  const zone = process.env.TZ;
  try {
    process.env.TZ = "Asia/Shanghai";
    assert.equal(localInputToIso("2026-03-01T10:00"), "2026-03-01T10:00:00+08:00");
    assert.equal(toLocalInput(new Date("2026-03-01T02:00:00Z")), "2026-03-01T10:00");
    process.env.TZ = "America/New_York";
    assert.equal(localInputToIso("2026-01-15T09:30"), "2026-01-15T09:30:00-05:00");
    assert.equal(localInputToIso("2026-07-15T09:30"), "2026-07-15T09:30:00-04:00"); // daylight saving time
    process.env.TZ = "Asia/Kolkata";
    assert.equal(localInputToIso("2026-07-15T09:30"), "2026-07-15T09:30:00+05:30");
    for (const bad of ["", "2026-02-30T10:00", "2026-13-01T10:00", "tomorrow", "2026-03-01"]) assert.equal(localInputToIso(bad), null, bad);
  } finally {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  }
});

test("dates and times read in the chosen language", () => {
  assert.equal(formatDate("2026-03-01", "zh-CN"), "2026年3月1日");
  assert.equal(formatDate("2026-03-01", "en"), "Mar 1, 2026");
  const at = "2026-03-01T02:00:00+00:00";
  assert.equal(formatDateTime(at, "zh-CN", { timeZone: "Asia/Shanghai" }), "2026年3月1日周日 10:00");
  assert.equal(formatDateTime(at, "en", { timeZone: "Asia/Shanghai", zone: true }), "Sun, Mar 1, 2026, 10:00 AM (GMT+8)");
  assert.equal(formatDateTime("not a date", "en"), "");
  assert.deepEqual(["2026-01-31", "2024-01-31", "2026-12-15"].map((d) => addMonths(d, 1)), ["2026-02-28", "2024-02-29", "2027-01-15"]);
});
