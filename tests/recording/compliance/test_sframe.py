"""The officer's SFrame decryption: RFC 9605's test vectors, frames encrypted by the pages' own code (run in
Node), and a recorded WebM of ciphertext blocks turned back into the WebM the camera and microphone made."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest

from recording.compliance.sframe import (
    SFrameError,
    clear_prefix_length,
    decrypt_media_frame,
    decrypt_webm,
    derive_key_salt,
    encode_header,
    open_sframe,
    parse_header,
    seal_sframe,
)
from recording.recorder.webm import WebmMuxer, vp8_keyframe_size

ROOT = Path(__file__).resolve().parents[3]
VECTORS = json.loads((ROOT / "web_client" / "test" / "fixtures" / "sframe-rfc9605.json").read_text())
ENCRYPT_JS = Path(__file__).with_name("sframe_encrypt.mjs")
BASE_KEY = bytes(range(32))
KID = 0x5EED_0000_0001  # as the key layer picks them: below 2**48
WIDTH, HEIGHT = 320, 240


def js_encrypt(base_key: bytes, kid: int, frames: list[tuple[str, bytes]]) -> list[bytes]:
    """``frames`` encrypted by the browser's worker code (web_client/src/lib/e2ee/transform.js) under Node."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: run scripts/setup.sh")
    request = {"base_key": base_key.hex(), "kid": kid,
               "frames": [{"kind": kind, "data": data.hex()} for kind, data in frames]}
    done = subprocess.run([node, str(ENCRYPT_JS)], input=json.dumps(request).encode(), capture_output=True,
                          check=True, timeout=60)
    return [bytes.fromhex(frame) for frame in json.loads(done.stdout)["frames"]]


@pytest.fixture(scope="module")
def vp8_frames() -> list[bytes]:
    """30 VP8 frames of a moving gradient, a key frame every 10."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = Fraction(1, 10)
    encoder.gop_size = 10
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out = []
    for n in range(30):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma = bytes((x + 4 * n) & 0xFF for x in range(WIDTH)) * HEIGHT
        for plane, fill in zip(frame.planes, (luma, b"\x60" * 99999, b"\xa0" * 99999), strict=True):
            plane.update(fill[:plane.buffer_size])
        frame.pts = n
        out += [bytes(p) for p in encoder.encode(frame)]
    return out + [bytes(p) for p in encoder.encode(None)]


@pytest.fixture(scope="module")
def opus_frames() -> list[bytes]:
    """50 Opus packets (one second) of a 440 Hz tone."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, "mono", "s16"
    encoder.time_base = Fraction(1, 48_000)
    packets = []
    for n in range(50):
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        samples = bytearray()
        for i in range(960):
            value = 8000 if ((n * 960 + i) * 440 // 24_000) % 2 else -8000
            samples += value.to_bytes(2, "little", signed=True)
        frame.planes[0].update(bytes(samples))
        frame.sample_rate, frame.pts = 48_000, n * 960
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def test_sframe_header_rfc9605_vectors_encode_and_parse() -> None:
    assert len(VECTORS["header"]) == 289
    for vector in VECTORS["header"]:
        kid, ctr, header = int(vector["kid"], 16), int(vector["ctr"], 16), bytes.fromhex(vector["header"])
        assert encode_header(kid, ctr) == header
        assert parse_header(header + b"rest") == (kid, ctr, len(header))


def test_sframe_header_truncated_or_not_minimal_is_refused() -> None:
    for bad in ("", "0901", "8007", "090001"):
        with pytest.raises(SFrameError):
            parse_header(bytes.fromhex(bad))


def test_sframe_rfc9605_vector_aes_128_gcm_sha256_128() -> None:
    (vector,) = VECTORS["sframe"]
    kid, ctr = int(vector["kid"], 16), int(vector["ctr"], 16)
    base_key, metadata = bytes.fromhex(vector["base_key"]), bytes.fromhex(vector["metadata"])
    assert derive_key_salt(base_key, kid) == (bytes.fromhex(vector["sframe_key"]), bytes.fromhex(vector["sframe_salt"]))
    sealed = seal_sframe(base_key, kid, ctr, metadata, bytes.fromhex(vector["pt"]))
    assert sealed.hex() == vector["ct"]
    assert open_sframe({kid: base_key}, metadata, sealed).hex() == vector["pt"]
    with pytest.raises(SFrameError, match="does not authenticate"):
        open_sframe({kid: base_key}, metadata + b"!", sealed)
    with pytest.raises(SFrameError, match="no key"):
        open_sframe({kid + 1: base_key}, metadata, sealed)


def test_sframe_frames_encrypted_by_the_page_code_decrypt_in_python(vp8_frames: list[bytes],
                                                                    opus_frames: list[bytes]) -> None:
    key_frame, delta_frame = vp8_frames[0], vp8_frames[1]
    assert vp8_keyframe_size(key_frame) == (WIDTH, HEIGHT) and vp8_keyframe_size(delta_frame) is None
    frames = [("video", key_frame), ("video", delta_frame), ("audio", opus_frames[0])]
    sealed = js_encrypt(BASE_KEY, KID, frames)
    # The VP8 payload header stays readable (the recorder's muxer needs the key frame and its size);
    # the rest, and the whole Opus packet, is ciphertext.
    assert sealed[0][:10] == key_frame[:10] and vp8_keyframe_size(sealed[0]) == (WIDTH, HEIGHT)
    assert sealed[1][:3] == delta_frame[:3]
    assert parse_header(sealed[2])[:2] == (KID, 2)
    assert opus_frames[0] not in sealed[2]
    for (kind, plain), protected in zip(frames, sealed, strict=True):
        assert clear_prefix_length(kind, protected) == clear_prefix_length(kind, plain)
        assert decrypt_media_frame(kind, protected, {KID: BASE_KEY}) == plain
        with pytest.raises(SFrameError):
            decrypt_media_frame(kind, protected, {KID: bytes(32)})
    tampered = bytearray(sealed[0])
    tampered[6] ^= 1  # the width in the clear prefix
    with pytest.raises(SFrameError, match="does not authenticate"):
        decrypt_media_frame("video", bytes(tampered), {KID: BASE_KEY})


def _mux(video: list[bytes], audio: list[bytes]) -> bytes:
    """A participant's WebM as the recorder writes it (its muxer, frames passed through)."""
    muxer = WebmMuxer(("video", "audio"), session_start=0.0, clock=lambda: 0.0)
    out = []
    for n in range(max(len(video), len(audio) // 5)):
        if n < len(video):
            muxer.write("video", video[n], n * 9000, vp8_keyframe_size(video[n]) is not None, arrival=n * 0.1)
        for m in range(5 * n, min(5 * n + 5, len(audio))):
            muxer.write("audio", audio[m], m * 960, True, arrival=m * 0.02)
        out.append(muxer.cut())
    out.append(muxer.close())
    return b"".join(out)


def _decoded(data: bytes) -> tuple[list[bytes], int]:
    """The luma planes of every video frame that decodes, and how many audio frames decode."""
    pictures: list[bytes] = []
    sounds = 0
    with av.open(io.BytesIO(data), "r") as container:
        for packet in container.demux():
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                if isinstance(frame, av.VideoFrame):
                    pictures.append(bytes(frame.planes[0]))
                else:
                    sounds += 1
    return pictures, sounds


def test_sframe_recorded_webm_decrypts_into_the_playable_original(tmp_path: Path, vp8_frames: list[bytes],
                                                                  opus_frames: list[bytes]) -> None:
    frames = [("video", frame) for frame in vp8_frames] + [("audio", frame) for frame in opus_frames]
    sealed = js_encrypt(BASE_KEY, KID, frames)
    plain_webm = _mux(vp8_frames, opus_frames)
    recorded = tmp_path / "recorded.webm"
    recorded.write_bytes(_mux(sealed[:len(vp8_frames)], sealed[len(vp8_frames):]))

    original_pictures, original_sounds = _decoded(plain_webm)
    assert len(original_pictures) == len(vp8_frames) and original_sounds == len(opus_frames)
    # Without the key the recording shows none of the pictures.
    ciphertext_pictures, _ = _decoded(recorded.read_bytes())
    assert not set(ciphertext_pictures) & set(original_pictures)

    with (tmp_path / "decrypted.webm").open("wb") as target:
        result = decrypt_webm(recorded, target, {KID: BASE_KEY})
    assert (result.decrypted, result.dropped) == (len(frames), 0)
    decrypted = (tmp_path / "decrypted.webm").read_bytes()
    assert _decoded(decrypted) == (original_pictures, original_sounds)
    with av.open(io.BytesIO(decrypted), "r") as container:
        assert [s.codec_context.name for s in container.streams.video] == ["vp8"]
        assert (container.streams.video[0].codec_context.width, container.streams.video[0].codec_context.height) \
            == (WIDTH, HEIGHT)
        assert container.duration is not None  # written seekable: players can seek it

    with (tmp_path / "wrong.webm").open("wb") as target:
        wrong = decrypt_webm(recorded, target, {KID: bytes(32)})
    assert (wrong.decrypted, wrong.dropped) == (0, len(frames))
