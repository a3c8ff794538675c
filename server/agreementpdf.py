"""The signed agreement as a printable PDF: the terms, the parties, the signatures and how to verify them.

The PDF is a readable copy, not the evidence: it carries the signed agreement JSON as an attached file,
the fingerprint of each signing key, the server's countersignature with its public key, and a QR code
of what ties the paper to the JSON (the document's SHA-256 and the countersignature), with the offline
command that checks it (``mediation-admin verify-agreement``). Chinese text needs a CJK font, embedded
(subset) in the PDF: ``MEDIATION_AGREEMENT_FONT`` names one (a .ttf, .otf or .ttc, ``path#index`` for a
face of a collection); by default fontconfig finds a Simplified Chinese face (Debian's fonts-noto-cjk).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import hashlib
import io
import json
import shutil
import string
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from fontTools import subset as font_subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, TTLibError, newTable

import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos
from fpdf.fonts import FontFace

from recording.records.checkpoint import public_key_pem
from server.agreements import canonical
from server.errors import ServiceUnavailable

# Signed agreements never change: their PDFs are kept, a few, so a second download costs nothing.
CACHED = 32
# Digits after the decimal point (ISO 4217) of the currencies the desk offers; others have two.
_EXPONENTS = {"JPY": 0, "KRW": 0}
_FAMILY = "cjk"


class FontMissing(ServiceUnavailable):
    """No CJK font to render with: 503 ``pdf_font_missing``, naming what was looked for."""

    code = "pdf_font_missing"


LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "还款协议", "subtitle": "在线调解中心 · 经双方签署并由调解服务器副署",
        "case_number": "案件编号", "agreement": "协议编号", "version": "版本", "lender": "出借方",
        "borrower": "借款人", "loan_reference": "借款编号", "settled": "和解金额", "waived": "减免罚息",
        "instalments": "分期还款", "number": "期数", "due": "到期日", "amount": "金额", "terms": "协议条款",
        "drafted": "起草人", "signatures": "签署", "signer": "签署方", "signed_at": "签署时间",
        "key": "签名公钥指纹（SHA-256）", "signer.borrower": "借款人", "signer.lender": "出借方（银行）",
        "counter": "服务器副署", "key_id": "副署密钥编号", "counter_key": "副署公钥",
        "signature": "签名", "verify": "如何核验",
        "verify.1": "本 PDF 附有已签署协议的 JSON 文件 {file}（也可在案件页面下载）。它才是核验的依据，本文只是便于阅读的副本。",
        "verify.2": "在离线电脑上运行下面的命令，用调解机构公布的副署公钥核验 JSON 文件中的双方签名和服务器副署：",
        "verify.3": "再核对：JSON 中协议文本的 SHA-256 应与二维码中和本页所印的一致；副署密钥编号应与调解机构公布的一致。",
        "qr": "二维码内容：协议编号、协议文本的 SHA-256、副署密钥编号与副署签名。",
        "document_sha256": "协议文本 SHA-256", "page": "第 {page} 页",
    },
    "en": {
        "title": "Repayment agreement", "subtitle": "Online Mediation Centre · signed by both parties, "
                                                  "countersigned by the mediation server",
        "case_number": "Case number", "agreement": "Agreement", "version": "Version", "lender": "Lender",
        "borrower": "Borrower", "loan_reference": "Loan reference", "settled": "Settled amount",
        "waived": "Penalties waived", "instalments": "Instalments", "number": "No.", "due": "Due date",
        "amount": "Amount", "terms": "Terms", "drafted": "Drafted by", "signatures": "Signatures",
        "signer": "Signer", "signed_at": "Signed at", "key": "Signing key fingerprint (SHA-256)",
        "signer.borrower": "Borrower", "signer.lender": "Lender (bank)", "counter": "Server countersignature",
        "key_id": "Countersigning key id", "counter_key": "Countersigning public key", "signature": "Signature",
        "verify": "How to verify",
        "verify.1": "The signed agreement JSON is attached to this PDF as {file} (the case page offers it too). "
                    "That file is the evidence; this document is a readable copy of it.",
        "verify.2": "On an offline computer, check both parties' signatures and the server's countersignature "
                    "in the JSON with the countersigning key the mediation body publishes:",
        "verify.3": "Then check that the SHA-256 of the agreement text in the JSON is the one in the QR code and "
                    "printed here, and that the countersigning key id is the one the mediation body publishes.",
        "qr": "The QR code holds the agreement id, the SHA-256 of the agreement text, the countersigning key id "
              "and the countersignature.",
        "document_sha256": "SHA-256 of the agreement text", "page": "Page {page}",
    },
}


def key_fingerprint(public_key_b64url: str) -> str:
    """A signing key's fingerprint: the SHA-256 of its 32 raw bytes, in hex, in groups of four."""
    raw = base64.urlsafe_b64decode(public_key_b64url + "=" * (-len(public_key_b64url) % 4))
    digest = hashlib.sha256(raw).hexdigest()
    return " ".join(digest[i:i + 4] for i in range(0, len(digest), 4))


def money(amount_minor: int, currency: str) -> str:
    exponent = _EXPONENTS.get(currency, 2)
    major, minor = divmod(abs(amount_minor), 10 ** exponent)
    sign = "-" if amount_minor < 0 else ""
    text = f"{major:,}" + (f".{minor:0{exponent}d}" if exponent else "")
    return f"{sign}{currency} {text}"


def _when(iso: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def file_name(document: dict[str, Any], extension: str) -> str:
    return f"agreement-{document.get('case_number', 'case')}-v{document.get('version', 0)}.{extension}"


def qr_payload(signed: dict[str, Any], document_sha256: str) -> str:
    document, counter = signed["document"], signed.get("countersignature") or {}
    return "\n".join((
        "mediation-agreement/v1", f"case {document.get('case_number', '')}",
        f"agreement {document.get('agreement_id', '')} v{document.get('version', '')}",
        f"sha256 {document_sha256}", f"key {counter.get('key_id', '')}", f"countersignature {counter.get('signature', '')}",
    ))


def find_font(setting: str) -> tuple[Path, int]:
    """The CJK font to embed: the setting's (``path`` or ``path#index``), else fontconfig's choice."""
    if setting:
        path, _, index = setting.partition("#")
        font = Path(path)
        if not font.is_file():
            raise FontMissing(f"MEDIATION_AGREEMENT_FONT names {path!r}, which is not a file")
        return font, int(index) if index.isdigit() else 0
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        raise FontMissing("no CJK font to print the agreement with: fontconfig (fc-list) is not installed; install "
                          "fonts-noto-cjk and fontconfig, or set MEDIATION_AGREEMENT_FONT")
    try:
        found = subprocess.run([fc_list, ":lang=zh-cn", "--format", "%{file}|%{index}|%{family}|%{style}\n"],
                               capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise FontMissing(f"could not ask fontconfig for a CJK font: {exc}") from None
    faces = []
    for line in found.splitlines():
        parts = line.split("|")
        if len(parts) == 4 and parts[1].isdigit() and Path(parts[0]).suffix.lower() in (".ttf", ".otf", ".ttc"):
            faces.append((parts[0], int(parts[1]), parts[2], parts[3]))
    if not faces:
        raise FontMissing("no CJK font to print the agreement with: fontconfig knows none for zh-cn; install "
                          "fonts-noto-cjk, or set MEDIATION_AGREEMENT_FONT")

    def preference(face: tuple[str, int, str, str]) -> tuple[int, int, int, str]:
        path, _, family, style = face
        return ("Sans CJK SC" not in family, "Regular" not in style, "Mono" in family, path)

    path, index, _, _ = min(faces, key=preference)
    return Path(path), index


def truetype_subset(font: tuple[Path, int], text: str) -> bytes:
    """The glyphs ``text`` needs, from ``font``, as a TrueType-outline font.

    Noto CJK (like most CJK fonts) has CFF outlines, which fpdf2 embeds with widths and a text map that
    viewers and text extraction misread; its cubic outlines are converted to quadratic glyf ones here."""
    try:
        face = TTFont(str(font[0]), fontNumber=font[1])
    except (OSError, TTLibError) as exc:
        raise FontMissing(f"cannot read the font {font[0]} (face {font[1]}): {exc}") from None
    options = font_subset.Options()
    options.name_IDs, options.layout_features, options.hinting, options.notdef_outline = ["*"], [], False, True
    subsetter = font_subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(face)
    if "CFF " in face:
        order = face.getGlyphOrder()
        outlines = face.getGlyphSet()
        glyf = newTable("glyf")
        glyf.glyphOrder, glyf.glyphs = order, {}
        for name in order:
            pen = TTGlyphPen(None)
            outlines[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
            glyf[name] = pen.glyph()
        face["glyf"], face["loca"] = glyf, newTable("loca")
        maxp = face["maxp"] = newTable("maxp")
        maxp.tableVersion, maxp.maxZones, maxp.numGlyphs = 0x00010000, 1, len(order)
        for field in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs", "maxStackElements",
                      "maxSizeOfInstructions", "maxComponentElements", "maxPoints", "maxContours",
                      "maxCompositePoints", "maxCompositeContours", "maxComponentDepth"):
            setattr(maxp, field, 0)
        post = face["post"]
        post.formatType, post.extraNames, post.mapping, post.glyphOrder = 2.0, [], {}, order
        for table in ("CFF ", "VORG"):
            if table in face:
                del face[table]
        face.sfntVersion = "\x00\x01\x00\x00"
        face["head"].glyphDataFormat = 0
    out = io.BytesIO()
    face.save(out)
    return out.getvalue()


class AgreementPrinter:
    """Renders signed agreements to PDF, one at a time off the event loop, and keeps the last few."""

    def __init__(self, font_setting: str) -> None:
        self._font_setting = font_setting
        self._font: tuple[Path, int] | None = None
        self._lock = asyncio.Lock()
        self._cache: collections.OrderedDict[tuple[str, int, str], bytes] = collections.OrderedDict()

    async def pdf(self, signed: dict[str, Any], countersigning_key: Ed25519PublicKey,
                  lang: str) -> tuple[str, bytes]:
        """The PDF's file name and bytes."""
        document = signed["document"]
        name = file_name(document, "pdf")
        key = (str(document.get("agreement_id")), int(document.get("version", 0)), lang)
        async with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return name, cached
            if self._font is None:
                self._font = await asyncio.to_thread(find_font, self._font_setting)
            body = await asyncio.to_thread(render, signed, countersigning_key, lang, self._font)
            self._cache[key] = body
            if len(self._cache) > CACHED:
                self._cache.popitem(last=False)
            return name, body


class _Document(FPDF):
    def __init__(self, labels: dict[str, str], case_number: str) -> None:
        super().__init__(format="A4")
        self._labels, self._case_number = labels, case_number

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(_FAMILY, size=8)
        self.set_text_color(110, 120, 130)
        self.cell(0, 6, f"{self._case_number} · " + self._labels["page"].format(page=self.page_no()), align="C")


def render(signed: dict[str, Any], countersigning_key: Ed25519PublicKey, lang: str, font: tuple[Path, int]) -> bytes:
    """The PDF of one signed agreement in ``lang`` ("zh-CN" or "en")."""
    text = "".join(LABELS[lang].values()) + json.dumps(signed, ensure_ascii=False) + string.printable + "·…，。"
    with tempfile.TemporaryDirectory(prefix="agreement-font-") as folder:
        face = Path(folder) / "face.ttf"  # fpdf2 reads a font from a file, until the PDF is written
        face.write_bytes(truetype_subset(font, text))
        return _compose(signed, countersigning_key, lang, face)


def _compose(signed: dict[str, Any], countersigning_key: Ed25519PublicKey, lang: str, face: Path) -> bytes:
    labels = LABELS[lang]
    document, signatures = signed["document"], signed["signatures"]
    counter = signed.get("countersignature") or {}
    document_sha256 = hashlib.sha256(canonical(document)).hexdigest()
    currency = str(document.get("currency", ""))
    pdf = _Document(labels, str(document.get("case_number", "")))
    pdf.set_title(f"{labels['title']} {document.get('case_number', '')}")
    pdf.set_lang(lang)
    pdf.set_creator("mediation-server")
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_font(_FAMILY, "", str(face))
    pdf.add_page()
    width = pdf.epw

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font(_FAMILY, size=12.5)
        pdf.set_text_color(31, 90, 133)
        pdf.cell(width, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_draw_color(197, 205, 214)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
        pdf.ln(1.5)
        pdf.set_text_color(28, 38, 49)
        pdf.set_font(_FAMILY, size=10)

    def pairs(rows: list[tuple[str, str]], *, mono: bool = False) -> None:
        pdf.set_font(_FAMILY, size=9.5 if mono else 10)
        with pdf.table(col_widths=(48, width - 48), borders_layout="NONE", first_row_as_headings=False,
                       line_height=5.5 if mono else 6, text_align=("LEFT", "LEFT"), padding=(0.6, 0),
                       wrapmode=WrapMode.CHAR if mono else WrapMode.WORD) as table:
            for label, value in rows:
                row = table.row()
                row.cell(label, style=FontFace(color=(102, 114, 127)))
                row.cell(value)
        pdf.set_font(_FAMILY, size=10)

    pdf.set_font(_FAMILY, size=20)
    pdf.cell(width, 11, labels["title"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FAMILY, size=9.5)
    pdf.set_text_color(102, 114, 127)
    pdf.multi_cell(width, 5, labels["subtitle"], align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(28, 38, 49)
    pdf.ln(2)
    pairs([
        (labels["case_number"], str(document.get("case_number", ""))),
        (labels["agreement"], f"{document.get('agreement_id', '')} · {labels['version']} {document.get('version', '')}"),
        (labels["borrower"], str(document.get("borrower", ""))),
        (labels["lender"], str(document.get("lender", ""))),
        (labels["loan_reference"], str(document.get("loan_reference", ""))),
        (labels["settled"], money(int(document.get("settled_amount_minor", 0)), currency)),
        (labels["waived"], money(int(document.get("waived_penalties_minor", 0)), currency)),
        (labels["drafted"], f"{document.get('drafted_by', '')} · {_when(str(document.get('drafted_at', '')))}"),
    ])

    heading(labels["instalments"])
    with pdf.table(col_widths=(12, 40, 48), text_align=("LEFT", "LEFT", "RIGHT"), line_height=6.5,
                   first_row_as_headings=True,
                   headings_style=FontFace(emphasis="", fill_color=(243, 245, 247))) as table:
        table.row((labels["number"], labels["due"], labels["amount"]))
        for number, item in enumerate(document.get("instalments", []), start=1):
            table.row((str(number), str(item.get("due_date", "")),
                       money(int(item.get("amount_minor", 0)), currency)))

    heading(labels["terms"])
    pdf.multi_cell(width, 6, str(document.get("terms", "")), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT,
                   wrapmode=WrapMode.CHAR)

    heading(labels["signatures"])
    for entry in signatures:
        signer = str(entry.get("signer", ""))
        pairs([(labels["signer"], labels.get(f"signer.{signer}", signer)),
               (labels["signed_at"], _when(str(entry.get("signed_at", ""))))])
        groups = key_fingerprint(str(entry.get("public_key", ""))).split(" ")
        pairs([(labels["key"], " ".join(groups[:8]) + "\n" + " ".join(groups[8:])),
               (labels["signature"], str(entry.get("signature", "")))], mono=True)
        pdf.ln(2)

    heading(labels["counter"])
    pairs([(labels["signed_at"], _when(str(counter.get("signed_at", ""))))])
    pairs([(labels["key_id"], str(counter.get("key_id", ""))),
           (labels["signature"], str(counter.get("signature", ""))),
           (labels["document_sha256"], document_sha256)], mono=True)
    pdf.set_font(_FAMILY, size=8)
    pdf.set_text_color(102, 114, 127)
    pdf.multi_cell(width, 4, labels["counter_key"] + "\n" + public_key_pem(countersigning_key).strip(), align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(28, 38, 49)

    attached = file_name(document, "json")
    heading(labels["verify"])
    qr = segno.make(qr_payload(signed, document_sha256), error="m", micro=False)
    size = 46.0
    if pdf.get_y() + size > pdf.h - 20:
        pdf.add_page()
    top, left = pdf.get_y(), pdf.l_margin + width - size
    modules = qr.matrix
    cell = size / (len(modules) + 8)
    pdf.set_fill_color(0, 0, 0)
    for row_number, row in enumerate(modules):
        for column, dark in enumerate(row):
            if dark:
                pdf.rect(left + (column + 4) * cell, top + (row_number + 4) * cell, cell, cell, style="F")
    text_width = width - size - 4
    pdf.multi_cell(text_width, 5.5, labels["verify.1"].format(file=attached), align="L", new_x=XPos.LMARGIN,
                   new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.multi_cell(text_width, 5.5, labels["verify.2"], align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), top + size) + 1)
    pdf.set_font(_FAMILY, size=8.5)
    pdf.set_fill_color(243, 245, 247)
    pdf.multi_cell(width, 6, f"mediation-admin verify-agreement {attached} --public-key mediation-countersign.pem",
                   fill=True, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT, padding=1.5)
    pdf.ln(1)
    pdf.set_font(_FAMILY, size=10)
    pdf.multi_cell(width, 5.5, labels["verify.3"], align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.set_font(_FAMILY, size=8)
    pdf.set_text_color(102, 114, 127)
    pdf.multi_cell(width, 4, labels["qr"], align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.embed_file(bytes=json.dumps(signed, ensure_ascii=False, indent=2).encode(), basename=attached,
                   mime_type="application/json", desc="signed agreement (verify with mediation-admin verify-agreement)")
    return bytes(pdf.output())
