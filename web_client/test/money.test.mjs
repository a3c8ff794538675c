// Amounts: decimal strings in major units <-> integer minor units, and formatting per currency.
import { test } from "node:test";
import assert from "node:assert/strict";

import { formatMinor, MAX_MINOR, minorDigits, minorToDecimal, parseMinor } from "../src/lib/money.js";
import { buildAgreement, splitEvenly, sumMinor } from "../src/lib/agreement.js";

const code = (fn) => {
  try {
    fn();
  } catch (error) {
    return error.code;
  }
  return null;
};

test("parseMinor reads decimal strings exactly, with no floating-point error", () => {
  assert.equal(parseMinor("1,234.56", "CNY"), 123456);
  assert.equal(parseMinor("0.29", "CNY"), 29); // 0.29 * 100 is 28.999999999999996 in floating point
  assert.equal(parseMinor("0.1", "CNY"), 10);
  assert.equal(parseMinor("4833.43", "CNY") * 3, 1_450_029);
  assert.equal(parseMinor("1.15", "CNY"), 115); // 1.15 * 100 is 114.99999999999999 in floating point
});

test("parseMinor accepts the ways people type amounts", () => {
  assert.equal(parseMinor("1234", "CNY"), 123400);
  assert.equal(parseMinor("1234.", "CNY"), 123400);
  assert.equal(parseMinor("1234.5", "CNY"), 123450);
  assert.equal(parseMinor(" 12 000.50 ", "CNY"), 1200050);
  assert.equal(parseMinor("1，234.00", "CNY"), 123400);
  assert.equal(parseMinor("¥88", "CNY"), 8800);
  assert.equal(parseMinor("12.340", "CNY"), 1234); // trailing zeros are not extra precision
  assert.equal(parseMinor("1,000", "JPY"), 1000);
  assert.equal(parseMinor("1.234", "KWD"), 1234);
  assert.equal(parseMinor("0", "CNY"), 0);
});

test("parseMinor refuses what is not an amount, with a code the page translates", () => {
  assert.equal(code(() => parseMinor("", "CNY")), "amount.empty");
  assert.equal(code(() => parseMinor("   ", "CNY")), "amount.empty");
  assert.equal(code(() => parseMinor("abc", "CNY")), "amount.invalid");
  assert.equal(code(() => parseMinor("-5", "CNY")), "amount.invalid");
  assert.equal(code(() => parseMinor("1e3", "CNY")), "amount.invalid");
  assert.equal(code(() => parseMinor("1.2.3", "CNY")), "amount.invalid");
  assert.equal(code(() => parseMinor("0x10", "CNY")), "amount.invalid");
  assert.equal(code(() => parseMinor("12.345", "CNY")), "amount.decimals");
  assert.equal(code(() => parseMinor("1.5", "JPY")), "amount.decimals");
  assert.equal(parseMinor("10000000000000", "CNY"), MAX_MINOR);
  assert.equal(code(() => parseMinor("10000000000000.01", "CNY")), "amount.tooLarge");
  assert.equal(code(() => parseMinor("99999999999999999999999", "CNY")), "amount.tooLarge");
});

test("minor units survive a round trip through their decimal string", () => {
  const samples = [0, 1, 9, 10, 99, 100, 101, 123456, 2 ** 31, MAX_MINOR - 1, MAX_MINOR];
  for (let i = 0; i < 500; i += 1) samples.push(Math.floor(Math.random() * MAX_MINOR));
  for (const currency of ["CNY", "JPY", "KWD"]) {
    for (const minor of samples) assert.equal(parseMinor(minorToDecimal(minor, currency), currency), minor, `${minor} ${currency}`);
  }
  assert.equal(minorToDecimal(5, "CNY"), "0.05");
  assert.equal(minorToDecimal(123400, "CNY"), "1234.00");
  assert.equal(minorToDecimal(1000, "JPY"), "1000");
  assert.deepEqual([minorDigits("CNY"), minorDigits("JPY"), minorDigits("KWD")], [2, 0, 3]);
});

test("formatMinor shows each currency in the reader's locale, exactly", () => {
  assert.equal(formatMinor(123456, "CNY", "zh-CN"), "¥1,234.56");
  assert.equal(formatMinor(123456, "CNY", "en"), "CN¥1,234.56");
  assert.equal(formatMinor(123456, "USD", "en"), "$1,234.56");
  assert.equal(formatMinor(1000, "JPY", "en"), "¥1,000");
  assert.equal(formatMinor(29, "CNY", "zh-CN"), "¥0.29");
  assert.equal(formatMinor(MAX_MINOR - 1, "CNY", "zh-CN"), "¥9,999,999,999,999.99");
  assert.equal(formatMinor(0, "EUR", "en"), "€0.00");
});

test("instalments split evenly add up to the settled amount exactly", () => {
  for (const [total, count] of [[1_450_029, 3], [100, 3], [1, 1], [MAX_MINOR, 7], [999, 120]]) {
    const rows = splitEvenly(total, count, "2026-01-31");
    assert.equal(rows.length, count);
    assert.equal(sumMinor(rows.map((r) => r.amount_minor)), total);
    assert.ok(rows.every((r) => r.amount_minor >= 1));
  }
  assert.deepEqual(splitEvenly(100, 3, "2026-01-31").map((r) => r.due_date), ["2026-01-31", "2026-02-28", "2026-03-31"]);
  assert.deepEqual(splitEvenly(2, 3, "2026-01-01"), []);
});

test("the agreement draft is checked as the API checks it", () => {
  const values = (instalments, settled = "100.00") => ({ currency: "CNY", settled, waived: "", terms: "x", instalments });
  const ok = buildAgreement(values([{ due_date: "2030-01-01", amount: "60" }, { due_date: "2030-02-01", amount: "40.00" }]),
    { today: "2029-12-31" });
  assert.deepEqual(ok.errors, {});
  assert.deepEqual(ok.body, { currency: "CNY", settled_amount_minor: 10000, waived_penalties_minor: 0, terms: "x",
    instalments: [{ due_date: "2030-01-01", amount_minor: 6000 }, { due_date: "2030-02-01", amount_minor: 4000 }] });
  const short = buildAgreement(values([{ due_date: "2030-01-01", amount: "60" }]), { today: "2029-12-31" });
  assert.equal(short.errors.instalments, "agreement.sumMismatch");
  assert.equal(short.total, 6000);
  const order = buildAgreement(values([{ due_date: "2030-02-01", amount: "60" }, { due_date: "2030-01-01", amount: "40" }]));
  assert.equal(order.errors["instalments.1.due_date"], "agreement.dateOrder");
  const past = buildAgreement(values([{ due_date: "2020-01-01", amount: "100" }]), { today: "2029-12-31" });
  assert.equal(past.errors["instalments.0.due_date"], "agreement.pastDate");
  assert.equal(buildAgreement(values([])).errors.instalments, "agreement.noInstalments");
  assert.equal(buildAgreement(values([{ due_date: "2030-01-01", amount: "1.001" }])).errors["instalments.0.amount"], "amount.decimals");
});
