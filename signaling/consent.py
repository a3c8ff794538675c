"""The recording notice every party must accept before a session is recorded."""

from __future__ import annotations

import hashlib

NOTICES = {
    "zh-CN": (
        "本次调解将被录音录像，聊天记录也将被保存。所有记录在采集时即以合规官的公钥加密，"
        "服务器无法解密。记录仅用于调解存证和合规审查。您可以随时撤回同意，录制将立即停止。"
    ),
    "en": (
        "This mediation session will be recorded (audio, video and chat). Every record is encrypted "
        "as it is captured to the compliance officers' public keys; the server cannot decrypt it. "
        "Records serve only as evidence of the mediation and for compliance review. You may withdraw "
        "your consent at any time and the recording stops at once."
    ),
}


def notice_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


NOTICE_HASHES = {notice_sha256(text): language for language, text in NOTICES.items()}


def notice_view() -> list[dict[str, str]]:
    """The notice in every language with the hash a party sends back when it consents."""
    return [{"language": language, "text": text, "sha256": notice_sha256(text)} for language, text in NOTICES.items()]
