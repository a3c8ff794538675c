// The meeting basics' logic without a browser: what background blur keeps sharp, which time warning is
// due, and that their catalogs match.
import { test } from "node:test";
import assert from "node:assert/strict";

import { centreRegion, drawBlurred, faceRegion, MID, processedSize, SHRINK, smoothRegion } from "../src/lib/room/blurframe.js";
import meetingEn from "../src/lib/i18n/meeting.en.js";
import meetingZhCN from "../src/lib/i18n/meeting.zh-CN.js";
import { dueWarning } from "../src/ui/room/timer.js";

test("the centre region is a head-and-shoulders ellipse a little below the middle, inside the picture's width", () => {
  const r = centreRegion(1280, 720);
  assert.equal(r.cx, 640);
  assert.ok(r.cy > 360 && r.cy < 720 * 0.6, `cy ${r.cy}`);
  assert.ok(r.cx - r.rx > 0 && r.cx + r.rx < 1280, "the sides of the picture are blurred");
  assert.ok(r.cy - r.ry > 0, "the top of the picture is blurred");
});

test("a detected face grows to head and shoulders, reaching the bottom, no wider than the picture", () => {
  const r = faceRegion({ x: 500, y: 200, width: 200, height: 240 }, 1280, 720);
  assert.equal(r.cx, 600);
  assert.equal(r.cy + r.ry, 720, "down to the bottom edge");
  assert.ok(r.cy - r.ry < 200 && r.cy - r.ry >= 0, "above the forehead");
  assert.ok(r.rx > 200 && r.rx <= 640);
  assert.equal(faceRegion({ x: 0, y: 0, width: 2000, height: 100 }, 1280, 720).rx, 640);
});

test("frames wider than 960 pixels are processed and sent at 960, keeping their shape", () => {
  assert.deepEqual(processedSize(640, 480), { width: 640, height: 480, scale: 1 });
  assert.deepEqual(processedSize(1280, 720), { width: 960, height: 540, scale: 0.75 });
  assert.deepEqual(processedSize(1920, 1080), { width: 960, height: 540, scale: 0.5 });
});

test("the sharp region moves part of the way to a new detection", () => {
  const a = { cx: 0, cy: 0, rx: 10, ry: 10 };
  const b = { cx: 100, cy: 100, rx: 20, ry: 20 };
  assert.deepEqual(smoothRegion(null, b), b);
  const m = smoothRegion(a, b, 0.5);
  assert.deepEqual(m, { cx: 50, cy: 50, rx: 15, ry: 15 });
});

test("drawBlurred: a small copy stretched back in two steps, then the region drawn sharp under a clip", () => {
  const calls = [];
  const ctx = (name) => new Proxy({ canvas: { name } }, {
    get(target, key) {
      if (key in target) return target[key];
      return (...args) => calls.push([name, key, ...args]);
    },
    set(target, key, value) {
      calls.push([name, `=${String(key)}`, value]);
      return true;
    },
  });
  const source = { frame: true };
  drawBlurred(ctx("out"), { small: ctx("small"), mid: ctx("mid") }, source, 1200, 600, { cx: 600, cy: 330, rx: 300, ry: 270 });
  const draws = calls.filter((c) => c[1] === "drawImage");
  assert.deepEqual(draws.map((c) => c[0]), ["small", "mid", "out", "out"]);
  assert.deepEqual(draws[0].slice(2), [source, 0, 0, 1200 / SHRINK, 600 / SHRINK], "the frame shrunk");
  assert.deepEqual(draws[1].slice(2), [{ name: "small" }, 0, 0, 100, 50, 0, 0, 1200 / MID, 600 / MID], "stretched to the middle size");
  assert.deepEqual(draws[2].slice(2), [{ name: "mid" }, 0, 0, 400, 200, 0, 0, 1200, 600], "stretched over the whole frame");
  assert.deepEqual(draws[3].slice(2), [source, 0, 0, 1200, 600], "then the frame itself");
  const order = calls.filter((c) => c[0] === "out").map((c) => c[1]);
  assert.ok(order.indexOf("clip") > order.indexOf("drawImage") && order.indexOf("clip") < order.lastIndexOf("drawImage"),
    "the sharp frame is drawn inside the ellipse, over the blurred one");
  assert.deepEqual(calls.find((c) => c[1] === "ellipse").slice(2, 6), [600, 330, 300, 270]);
});

test("time warnings: the latest one due, none before 10 minutes remain", () => {
  assert.equal(dueWarning(10 * 60000 + 1), null);
  assert.equal(dueWarning(10 * 60000), "10");
  assert.equal(dueWarning(5 * 60000 + 1), "10");
  assert.equal(dueWarning(5 * 60000), "5");
  assert.equal(dueWarning(1), "5");
  assert.equal(dueWarning(0), "over");
  assert.equal(dueWarning(-3600000), "over");
});

test("the meeting catalogs have the same keys in both languages, none empty, placeholders kept", () => {
  assert.deepEqual(Object.keys(meetingZhCN).sort(), Object.keys(meetingEn).sort());
  for (const [key, en] of Object.entries(meetingEn)) {
    const zh = meetingZhCN[key];
    assert.ok(en.trim() && zh.trim(), key);
    assert.deepEqual([...zh.matchAll(/\{\w+\}/g)].map(String).sort(), [...en.matchAll(/\{\w+\}/g)].map(String).sort(), key);
  }
});
