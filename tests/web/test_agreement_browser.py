"""The signed agreement in the case page: readable, printable alone, downloadable as PDF and as the signed file."""

from __future__ import annotations

import io
import json

import pytest
from playwright.async_api import Browser, expect
from pypdf import PdfReader

from server.agreementpdf import key_fingerprint
from tests.conftest import Api, walk_to_scheduled
from tests.server.test_agreement_pdf import CHINESE_TERMS
from tests.server.test_agreements import sign, terms
from tests.web.browser import Pages


@pytest.mark.timeout(150)
async def test_agreement_case_page_offers_pdf_and_signed_file_and_prints_the_agreement_alone(
        api: Api, browser: Browser) -> None:
    journey = await walk_to_scheduled(api)
    status, agreement = await api.call("PUT", f"/api/cases/{journey.case_id}/agreement", token=journey.mediator,
                                       json=terms(terms=CHINESE_TERMS))
    assert status == 200, agreement
    path = f"/api/cases/{journey.case_id}/agreement/signatures"
    status, _ = await api.call("POST", path, token=journey.receipt,
                               json=sign(agreement["document"], journey.devices["borrower"], 1))
    assert status == 201
    pages = Pages(browser, api.base)
    try:
        borrower = await pages.open(f"/case#{journey.receipt}")
        await expect(borrower.get_by_test_id("agreement-state")).to_have_attribute("data-state", "draft")
        # The bank signs elsewhere: the borrower's page shows the signed agreement without a reload.
        status, _ = await api.call("POST", path, token=journey.bank,
                                   json=sign(agreement["document"], journey.devices["bank"], 1))
        assert status == 201
        await expect(borrower.get_by_test_id("agreement-state")).to_have_attribute("data-state", "signed",
                                                                                   timeout=2000)
        _, signed = await api.call("GET", f"/api/cases/{journey.case_id}/agreement/signed", token=journey.receipt)
        shown = borrower.get_by_test_id("key-fingerprint")
        await expect(shown).to_have_text([key_fingerprint(s["public_key"]) for s in signed["signatures"]])
        await expect(borrower.get_by_test_id("countersign-key")).to_have_text(signed["countersignature"]["key_id"])

        async with borrower.expect_download() as pdf_download:
            await borrower.get_by_test_id("agreement-download-pdf").click()
        download = await pdf_download.value
        assert download.suggested_filename.endswith(".pdf")
        body = (await download.path()).read_bytes()
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
        assert CHINESE_TERMS[:20] in text.replace("\n", "")
        for entry in signed["signatures"]:
            assert key_fingerprint(entry["public_key"])[:39] in text

        async with borrower.expect_download() as json_download:
            await borrower.get_by_test_id("agreement-download").click()
        saved = await json_download.value
        assert saved.suggested_filename.endswith(".json")
        assert json.loads((await saved.path()).read_text()) == signed

        # Print: the agreement card alone is laid out for paper.
        await borrower.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }")
        await borrower.get_by_test_id("agreement-print").click()
        assert await borrower.evaluate("() => window.__printed") == 1
        await borrower.emulate_media(media="print")
        await expect(borrower.get_by_test_id("agreement-card")).to_be_visible()
        await expect(borrower.get_by_test_id("agreement-verification")).to_be_visible()
        await expect(borrower.get_by_test_id("notices")).to_be_hidden()
        await expect(borrower.locator(".site-header")).to_be_hidden()
        await expect(borrower.get_by_test_id("agreement-download-pdf")).to_be_hidden()
        await borrower.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
        await expect(borrower.get_by_test_id("notices")).to_be_visible()  # still print media: only the header stays out
        await borrower.emulate_media(media="screen")
        assert not pages.problems, pages.problems
    finally:
        await pages.close()
