"""Media frame encryption in Chromium: one page, peer connections in loopback, MediaEncryption on both ends.

The page (tests/web/sframe/, bundled here with esbuild from the web client's own modules, served
under the pages' CSP with the built worker dist/workers/sframe.js) sends its fake camera and
microphone through protected senders to a protected receiver, and through a second connection to a
receiver that only records what came off the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from recording.compliance.sframe import clear_prefix_length, decrypt_media_frame, decrypt_webm, parse_header
from recording.recorder.peer import RecorderPeer
from server.app import _PAGE_CSP
from tests.web.browser import DIST, WAIT_MS

HERE = Path(__file__).resolve().parent / "sframe"
ESBUILD = DIST.parent / "node_modules" / ".bin" / "esbuild"
KID = 0x3A_5C17_0042
KEY = secrets.token_bytes(32)


@contextlib.asynccontextmanager
async def loopback_server(tmp_path: Path) -> AsyncIterator[str]:
    """The loopback page's URL, served on 127.0.0.1 with the CSP every page of the site has."""
    worker = DIST / "workers" / "sframe.js"
    if not worker.is_file() or not ESBUILD.exists():
        raise RuntimeError(f"{worker} or esbuild is missing: run scripts/setup.sh")
    bundle = tmp_path / "loopback.js"
    subprocess.run([str(ESBUILD), str(HERE / "loopback.js"), "--bundle", "--format=esm", f"--outfile={bundle}",
                    "--log-level=warning"], check=True, timeout=120)
    files = {"/": HERE / "loopback.html", "/loopback.js": bundle, "/tap-worker.js": HERE / "tap-worker.js",
             "/dist/workers/sframe.js": worker}

    async def serve(request: web.Request) -> web.StreamResponse:
        path = files.get(request.path)
        if path is None:
            raise web.HTTPNotFound()
        response = web.FileResponse(path)
        response.headers["Content-Security-Policy"] = _PAGE_CSP
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@pytest.fixture
async def loopback_url(tmp_path: Path) -> AsyncIterator[str]:
    async with loopback_server(tmp_path) as url:
        yield url


async def _open(browser: Browser, url: str, receive_kid: int | None,
                receive_key: bytes | None) -> tuple[Page, list[str]]:
    context = await browser.new_context()
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    # A missing favicon is logged as "Failed to load resource"; anything else (a CSP refusal) counts.
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and "Failed to load resource" not in message.text else None)
    await page.goto(url)
    await page.wait_for_function("typeof window.startLoopback === 'function'", timeout=WAIT_MS)
    await page.evaluate("options => window.startLoopback(options)", {
        "kid": KID, "sendKey": KEY.hex(), "receiveKid": receive_kid,
        "receiveKey": receive_key.hex() if receive_key is not None else None,
    })
    return page, problems


async def _until(page: Page, condition, what: str) -> dict:
    """The page's snapshot once ``condition(snapshot)`` holds; fails after WAIT_MS."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        snapshot = await page.evaluate("window.loopbackSnapshot()")
        if condition(snapshot):
            return snapshot
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {snapshot | {'tapped': len(snapshot['tapped'])}}")
        await asyncio.sleep(0.25)


async def test_sframe_loopback_right_key_decodes_and_wire_is_ciphertext(browser: Browser, loopback_url: str) -> None:
    page, problems = await _open(browser, loopback_url, KID, KEY)
    snapshot = await _until(page, lambda s: s["framesDecoded"] >= 30 and len(s["tapped"]) >= 24,
                            "30 decoded frames and 24 frames off the wire")
    receiving = snapshot["receiving"]
    assert receiving["decrypted"] > 0
    assert receiving["droppedAuth"] == receiving["droppedNoKey"] == receiving["droppedReplay"] == 0
    assert snapshot["sending"]["droppedNoSendKey"] == 0 and snapshot["failures"] == [] and problems == []

    # What a node relays: the VP8 payload header in clear, then SFrame with our KID, then ciphertext
    # that opens (in Python) into the frame the encoder made, which it resembles no more than chance.
    ciphertext = bytearray()
    counters: dict[int, bytes] = {}
    keys = 0
    for frame in snapshot["tapped"]:
        wire = bytes(frame["data"])
        prefix = clear_prefix_length("video", wire)
        assert prefix == (10 if frame["type"] == "key" else 3)
        if frame["type"] == "key":
            keys += 1
            assert wire[3:6] == b"\x9d\x01\x2a" and int.from_bytes(wire[6:8], "little") & 0x3FFF == 640
        kid, ctr, size = parse_header(wire[prefix:])
        assert kid == KID
        # A nonce is never used for two different frames. The tap's receiver may be handed one frame twice
        # (a loaded host's retransmissions); that is the same bytes under the same CTR, not a reuse.
        assert counters.setdefault(ctr, wire) == wire, f"CTR {ctr} sealed two different frames"
        plain = decrypt_media_frame("video", wire, {KID: KEY})
        assert plain[:prefix] == wire[:prefix] and len(wire) == len(plain) + size + 16
        body, sealed = plain[prefix:], wire[prefix + size:prefix + size + len(plain) - prefix]
        assert sum(a == b for a, b in zip(body, sealed, strict=True)) <= max(4, len(body) // 32)
        ciphertext += sealed
    assert keys >= 1 and len(counters) >= len(snapshot["tapped"]) // 2
    # Bytes of AES-GCM ciphertext are uniform: Pearson's statistic over 256 values stays near its
    # 255 degrees of freedom (standard deviation about 23).
    expected = len(ciphertext) / 256
    chi2 = sum((ciphertext.count(value) - expected) ** 2 / expected for value in range(256))
    assert len(ciphertext) > 4096 and chi2 < 400


@pytest.mark.parametrize("receive_key", ["none", "wrong"])
async def test_sframe_loopback_without_the_key_nothing_decodes(browser: Browser, loopback_url: str,
                                                               receive_key: str) -> None:
    key = None if receive_key == "none" else secrets.token_bytes(32)
    page, problems = await _open(browser, loopback_url, None if key is None else KID, key)
    dropped = "droppedNoKey" if key is None else "droppedAuth"
    # Frames reach the receiver (the tap shows the sender sends) and are all dropped there.
    snapshot = await _until(page, lambda s: s["receiving"][dropped] >= 100 and s["sending"]["encrypted"] >= 200,
                            f"100 frames dropped ({dropped})")
    assert snapshot["framesDecoded"] == 0
    assert snapshot["receiving"]["decrypted"] == 0
    assert snapshot["failures"] == [] and problems == []


async def test_sframe_recorder_stores_ciphertext_that_only_the_key_turns_into_playable_webm(
        browser: Browser, loopback_url: str, tmp_path: Path) -> None:
    segments: list[bytes] = []
    cut = asyncio.Event()

    async def on_segment(participant_id: str, index: int, data: bytes, started_at: float, ended_at: float,
                         final: bool) -> None:
        segments.append(data)
        if len(segments) >= 3:
            cut.set()

    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(loopback_url)
    await page.wait_for_function("typeof window.offerToRecorder === 'function'", timeout=WAIT_MS)
    recorder = RecorderPeer(on_segment, segment_seconds=1.0)
    try:
        offer = await page.evaluate("options => window.offerToRecorder(options)", {"kid": KID, "sendKey": KEY.hex()})
        answer = await recorder.handle_offer("browser", offer)
        await page.evaluate("sdp => window.acceptRecorderAnswer(sdp)", answer)
        await asyncio.wait_for(cut.wait(), WAIT_MS / 1000)
    finally:
        await recorder.close()
    sent = await page.evaluate("window.sendingStats()")
    assert sent["encrypted"] > 0 and sent["droppedNoSendKey"] == 0

    recorded = tmp_path / "recorded.webm"
    recorded.write_bytes(b"".join(segments))
    # Every block the recorder stored is an SFrame ciphertext of our key, as the browser sent it.
    blocks = {"video": 0, "audio": 0}
    with av.open(str(recorded)) as container:
        for packet in container.demux():
            if packet.dts is None:
                continue
            data = bytes(packet)
            kind = packet.stream.type
            kid, _, _ = parse_header(data[clear_prefix_length(kind, data):])
            assert kid == KID
            blocks[kind] += 1
    assert blocks["video"] >= 10 and blocks["audio"] >= 50
    # ffmpeg's decoders refuse it: VP8 finds invalid partitions, Opus invalid packet headers.
    garbled = _decoder_complaints(recorded)
    assert any(line.startswith("[vp8") for line in garbled) and any(line.startswith("[opus") for line in garbled)

    decrypted = tmp_path / "decrypted.webm"
    with decrypted.open("wb") as target:
        result = decrypt_webm(recorded, target, {KID: KEY})
    assert result.dropped == 0 and result.decrypted == blocks["video"] + blocks["audio"]
    assert _decoder_complaints(decrypted) == []
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                            "stream=codec_name,width,height,nb_read_frames", "-of", "json", str(decrypted)],
                           capture_output=True, text=True, check=True, timeout=120)
    streams = {s["codec_name"]: s for s in json.loads(probe.stdout)["streams"]}
    assert (streams["vp8"]["width"], streams["vp8"]["height"]) == (640, 480)
    assert int(streams["vp8"]["nb_read_frames"]) == blocks["video"]
    assert int(streams["opus"]["nb_read_frames"]) == blocks["audio"]


def _decoder_complaints(path: Path) -> list[str]:
    """What ffmpeg's decoders say while decoding every frame of ``path`` (nothing, for good media)."""
    done = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120, check=True)
    return [line for line in done.stderr.splitlines()
            if line.startswith(("[vp8", "[opus", "[libvpx", "[libopus")) or "Error while decoding" in line]
