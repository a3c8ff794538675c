"""CPU cost of the room's background blur (web_client/src/lib/room/blurframe.js) in Debian's Chromium.

    .venv/bin/python bench/blur.py [--sizes 640x480,1280x720] [--frames 240] [--seconds 10]

The blur module is bundled by esbuild (from web_client/node_modules) and run in a headless Chromium page
on the fake camera, the way the room runs it: MediaStreamTrackProcessor frames drawn blurred into an
OffscreenCanvas (at most 960 pixels wide, as the room sends it), each made a VideoFrame for a
MediaStreamTrackGenerator that a <video> plays. For each
camera size:

- `ms/frame` — the time to blur one frame and make the frame sent (drawBlurred + new VideoFrame), median
  and 90th percentile over `--frames` frames, and the median as a share of a frame's time at 24 fps;
- `cores` — the CPU time (user + system) of every Chromium process this benchmark started, over
  `--seconds` with the camera playing in a <video>, without and then with the blur in between, in cores;
  `+cores` is the difference: what the blur costs a participant's computer.

Chromium runs with --disable-gpu, as in the tests: canvas work is on the CPU (a real browser with a GPU
does the scaling and the filter there).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import Page, async_playwright  # noqa: E402

from bench.media import _children, _cpu_seconds  # noqa: E402
from tests.web.browser import CHROMIUM, FLAGS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "web_client"
ORIGIN = "http://localhost"  # a secure context for getUserMedia, answered by the page's route, never dialled

PAGE = """<!doctype html><html><body><video id="v" muted playsinline autoplay></video>
<script src="/blurframe.js"></script></body></html>"""

# Runs in the page: open the camera at width x height; `measure` times `frames` frames one by one,
# `play` sends the camera (blurred or not) to the <video> for the CPU window.
SETUP = """async ([width, height]) => {
  // The previous size's camera and every clone of it closed first, or the camera stays at that size.
  if (window.stopPlay) window.stopPlay();
  for (const track of window.tracks || []) track.stop();
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width, height, frameRate: 24 } });
  const source = stream.getVideoTracks()[0];
  window.tracks = [source];
  const clone = () => { const track = source.clone(); window.tracks.push(track); return track; };
  const s = source.getSettings();
  const canvases = {};
  const canvasesFor = (w, h) => {
    if (canvases.w !== w || canvases.h !== h) {
      const sizes = BlurFrame.scratchSizes(w, h);
      const scratch = (size) => new OffscreenCanvas(size.width, size.height).getContext("2d", { alpha: false });
      canvases.w = w; canvases.h = h;
      canvases.out = new OffscreenCanvas(w, h);
      canvases.outCtx = canvases.out.getContext("2d", { alpha: false });
      canvases.scratch = { small: scratch(sizes.small), mid: scratch(sizes.mid) };
    }
    return canvases;
  };
  const blur = (frame) => {
    const { width: w, height: h } = BlurFrame.processedSize(frame.displayWidth, frame.displayHeight);
    const c = canvasesFor(w, h);
    BlurFrame.drawBlurred(c.outCtx, c.scratch, frame, w, h, BlurFrame.centreRegion(w, h));
    return new VideoFrame(c.out, { timestamp: frame.timestamp });
  };
  window.bench = {
    source,
    size: [s.width, s.height],
    async measure(count) {
      const reader = new MediaStreamTrackProcessor({ track: clone() }).readable.getReader();
      const times = [];
      for (let i = 0; i < count; i++) {
        const { value: frame } = await reader.read();
        const t0 = performance.now();
        const out = blur(frame);
        times.push(performance.now() - t0);
        out.close(); frame.close();
      }
      reader.cancel();
      return times;
    },
    play(blurred) {
      const video = document.getElementById("v");
      if (window.stopPlay) window.stopPlay();
      if (!blurred) { video.srcObject = new MediaStream([source]); window.stopPlay = null; return video.play(); }
      const abort = new AbortController();
      const generator = new MediaStreamTrackGenerator({ kind: "video" });
      const transform = new TransformStream({ transform(frame, controller) {
        try { controller.enqueue(blur(frame)); } finally { frame.close(); } } });
      new MediaStreamTrackProcessor({ track: clone() }).readable
        .pipeThrough(transform, { signal: abort.signal }).pipeTo(generator.writable, { signal: abort.signal }).catch(() => {});
      window.stopPlay = () => abort.abort();
      video.srcObject = new MediaStream([generator]);
      return video.play();
    },
  };
  return window.bench.size;
}"""


def bundle() -> str:
    """lib/room/blurframe.js as a script defining the global BlurFrame."""
    esbuild = CLIENT / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        raise SystemExit("web_client/node_modules is missing: run scripts/setup.sh")
    return subprocess.run([str(esbuild), "src/lib/room/blurframe.js", "--bundle", "--format=iife", "--global-name=BlurFrame"],
                          cwd=CLIENT, check=True, capture_output=True, text=True).stdout


async def cores(page: Page, pids: set[int], seconds: float, blurred: bool) -> float:
    await page.evaluate("(b) => window.bench.play(b)", blurred)
    await asyncio.sleep(2)  # settle: the first frames and the decoder's start are not the steady cost
    before, start = _cpu_seconds(pids), time.monotonic()
    await asyncio.sleep(seconds)
    return (_cpu_seconds(pids) - before) / (time.monotonic() - start)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="640x480,1280x720", help="camera sizes asked for, WxH, comma-separated")
    parser.add_argument("--frames", type=int, default=240, help="frames timed one by one per size")
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU window per size, without and with the blur")
    args = parser.parse_args()
    script = bundle()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page()

        async def answer(route) -> None:
            if route.request.url.endswith("/blurframe.js"):
                await route.fulfill(body=script, content_type="text/javascript")
            else:
                await route.fulfill(body=PAGE, content_type="text/html")

        await page.route(f"{ORIGIN}/**", answer)
        await page.goto(f"{ORIGIN}/bench")
        pids = _children(os.getpid())
        print(f"{'camera':>10} {'ms/frame p50':>13} {'p90':>6} {'of 24fps':>9} {'cores plain':>12} {'cores blur':>11} {'+cores':>7}")
        for size in args.sizes.split(","):
            width, height = (int(n) for n in size.split("x"))
            got = await page.evaluate(SETUP, [width, height])
            times = sorted(await page.evaluate("(n) => window.bench.measure(n)", args.frames))
            p50 = statistics.median(times)
            p90 = times[int(len(times) * 0.9) - 1]
            plain = await cores(page, pids, args.seconds, False)
            blurred = await cores(page, pids, args.seconds, True)
            print(f"{got[0]:>5}x{got[1]:<4} {p50:>13.2f} {p90:>6.2f} {p50 / (1000 / 24):>8.0%} "
                  f"{plain:>12.2f} {blurred:>11.2f} {blurred - plain:>+7.2f}")
            await page.evaluate("() => window.stopPlay && window.stopPlay()")
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
