"""Browser CPU of media frame encryption (SFrame in encoded transforms) at 640×480, with and without.

    .venv/bin/python bench/sframe.py [--runs 5] [--seconds 15]

Each run starts Debian's Chromium headless (fake camera and microphone) on the loopback page of
tests/web/test_sframe_browser.py: one page sends its camera (640×480) and microphone over one
RTCPeerConnection to a second in the same page, which decodes the video. ``plain`` runs it as is;
``sframe`` with a MediaEncryption on both ends (every frame encrypted in the sender's worker and
decrypted in the receiver's). Runs alternate between the two. Once 30 frames have decoded, over
``--seconds``: the CPU time (user + system) of every Chromium process of the run, in cores; the
video frames encoded and decoded a second (so that both sides are seen to do the same work); and CPU
per video frame sent (the whole page's CPU, audio included, over the frames encoded: on a loaded host
Chromium throttles its frame rate, and this figure follows the work done). Prints each run, then the
median of each mode and ``uptime``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import async_playwright  # noqa: E402

from bench.media import _children, _cpu_seconds  # noqa: E402
from tests.web.browser import CHROMIUM, FLAGS  # noqa: E402
from tests.web.test_sframe_browser import KEY, KID, loopback_server  # noqa: E402

MODES = ("plain", "sframe")


async def run(url: str, mode: str, seconds: float) -> dict:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(url)
            await page.wait_for_function("typeof window.startLoopback === 'function'")
            await page.evaluate("options => window.startLoopback(options)", {
                "kid": KID, "sendKey": KEY.hex(), "receiveKid": KID, "receiveKey": KEY.hex(),
                "encrypt": mode == "sframe", "tap": False})
            await page.wait_for_function(
                "window.loopbackSnapshot().then(s => s.framesDecoded >= 30)", timeout=60_000, polling=500)
            pids = _children(os.getpid())
            before, cpu0, t0 = await page.evaluate("window.loopbackSnapshot()"), _cpu_seconds(pids), time.monotonic()
            await asyncio.sleep(seconds)  # the measuring window itself
            after, cpu1, t1 = await page.evaluate("window.loopbackSnapshot()"), _cpu_seconds(pids), time.monotonic()
        finally:
            await browser.close()
    window = t1 - t0
    encoded = after["framesEncoded"] - before["framesEncoded"]
    result = {
        "mode": mode, "seconds": round(window, 1), "cores": round((cpu1 - cpu0) / window, 3),
        "encoded_fps": round(encoded / window, 1),
        "cpu_ms_per_frame": round((cpu1 - cpu0) * 1000 / max(encoded, 1), 1),
        "decoded_fps": round((after["framesDecoded"] - before["framesDecoded"]) / window, 1),
    }
    if mode == "sframe":
        result["dropped"] = {name: value for name, value in after["receiving"].items()
                             if name.startswith("dropped") and value}
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each mode (alternating)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measuring window per run")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        async with loopback_server(Path(tmp)) as url:
            for _ in range(args.runs):
                for mode in MODES:
                    result = await run(url, mode, args.seconds)
                    results[mode].append(result)
                    print(result, flush=True)
    for mode in MODES:
        runs = results[mode]
        print(f"{mode}: median {statistics.median(r['cores'] for r in runs):.3f} cores, "
              f"{statistics.median(r['cpu_ms_per_frame'] for r in runs):.1f} ms CPU per video frame sent, "
              f"{statistics.median(r['encoded_fps'] for r in runs):.1f} frames encoded/s, "
              f"{statistics.median(r['decoded_fps'] for r in runs):.1f} decoded/s over {len(runs)} runs")
    print(subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip())


if __name__ == "__main__":
    asyncio.run(main())
