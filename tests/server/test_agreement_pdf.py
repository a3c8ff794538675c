"""The signed agreement as a PDF: readable Chinese terms, the signing keys' fingerprints, what verifies it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from server.agreementpdf import FontMissing, find_font, key_fingerprint
from server.settings import SettingsError, Settings
from tests.conftest import Api, walk_to_scheduled
from tests.server.test_agreements import sign, terms

CHINESE_TERMS = "借款人分三期偿还和解金额；银行减免全部逾期罚息。任何一期逾期超过十五日，剩余款项立即到期。"


async def _signed_case(api: Api):
    journey = await walk_to_scheduled(api)
    status, agreement = await api.call("PUT", f"/api/cases/{journey.case_id}/agreement", token=journey.mediator,
                                       json=terms(terms=CHINESE_TERMS))
    assert status == 200, agreement
    for who, token in (("borrower", journey.receipt), ("bank", journey.bank)):
        # Each signs with its device enrolled by a code read from its mail (the possession factor).
        status, body = await api.call("POST", f"/api/cases/{journey.case_id}/agreement/signatures", token=token,
                                      json=sign(agreement["document"], journey.devices[who], 1))
        assert status == 201, body
    return journey


def _text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


async def test_agreement_pdf_carries_chinese_terms_fingerprints_and_the_signed_json(api: Api, tmp_path: Path) -> None:
    journey = await _signed_case(api)
    path = f"/api/cases/{journey.case_id}/agreement/signed"
    async with api.session.get(f"{api.base}{path}.pdf",
                               headers={"Authorization": f"Bearer {journey.receipt}"}) as response:
        assert response.status == 200
        assert response.content_type == "application/pdf"
        assert response.headers["Content-Disposition"].startswith('attachment; filename="agreement-MD-')
        body = await response.read()
    assert body.startswith(b"%PDF-")
    _, signed = await api.call("GET", path, token=journey.receipt)
    text = _text(body)
    assert CHINESE_TERMS[:20] in text.replace("\n", "")
    assert signed["document"]["case_number"] in text and "还款协议" in text
    for entry in signed["signatures"]:
        groups = key_fingerprint(entry["public_key"]).split(" ")
        assert " ".join(groups[:8]) in text and " ".join(groups[8:]) in text, "a signing key's fingerprint is missing"
    assert signed["countersignature"]["key_id"] in text
    assert "mediation-admin verify-agreement" in text
    # The attached JSON is the signed agreement itself, and the offline command verifies it.
    attachments = PdfReader(io.BytesIO(body)).attachments
    (name, contents), = attachments.items()
    attached = json.loads(contents[0])
    assert attached == signed
    target = tmp_path / name
    target.write_bytes(contents[0])
    env = {**os.environ, "MEDIATION_DATA_DIR": str(api.services.settings.data_dir)}
    verified = subprocess.run([sys.executable, "-m", "server.cli", "verify-agreement", str(target)], env=env,
                              capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and "verified" in verified.stdout, verified.stdout + verified.stderr


async def test_agreement_pdf_in_english_and_refused_like_the_json(api: Api) -> None:
    journey = await _signed_case(api)
    path = f"/api/cases/{journey.case_id}/agreement/signed.pdf"
    status, body = await api.call("GET", f"{path}?lang=en", token=journey.officer)
    assert status == 200
    assert "Repayment agreement" in _text(body) and CHINESE_TERMS[:10] in _text(body).replace("\n", "")
    status, error = await api.call("GET", f"{path}?lang=fr", token=journey.officer)
    assert status == 422 and error["error"] == "invalid_field", error
    other = await walk_to_scheduled(api)
    status, error = await api.call("GET", path, token=other.receipt)
    assert status == 403 and error["error"] == "not_case_member", error
    status, error = await api.call("GET", f"/api/cases/{other.case_id}/agreement/signed.pdf", token=other.receipt)
    assert status == 404 and error["error"] == "not_found", error


def test_agreement_pdf_font_setting_names_a_missing_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MEDIATION_AGREEMENT_FONT"):
        Settings.from_env({"MEDIATION_AGREEMENT_FONT": str(tmp_path / "none.ttf")})
    with pytest.raises(SettingsError, match="MEDIATION_AGREEMENT_FONT"):
        Settings.from_env({"MEDIATION_AGREEMENT_FONT": str(tmp_path)})


def test_agreement_pdf_without_fontconfig_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(FontMissing, match="fonts-noto-cjk"):
        find_font("")
    assert FontMissing.status == 503 and FontMissing.code == "pdf_font_missing"


def test_agreement_pdf_default_font_is_a_chinese_face() -> None:
    path, index = find_font("")
    assert path.suffix.lower() in (".ttf", ".otf", ".ttc") and index >= 0
