"""The system's Noto Sans CJK, made usable by ReportLab.

ReportLab embeds TrueType outlines only, and Noto Sans CJK ships CFF
(PostScript) outlines in an OpenType collection. So for each document we take
the Simplified Chinese face, subset it to the characters the document uses
(a receipt needs a few hundred glyphs of 65,000), convert those outlines to
TrueType quadratics (fontTools' cu2qu, error under 1/1000 em: invisible) and
hand ReportLab the small font: about 1.3 s on a cold cache, then cached per
character set (a receipt's labels are the same for every member).
"""

from __future__ import annotations

import hashlib
import io
import os
from functools import lru_cache

from django.conf import settings
from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont as ReportLabFont

FACE = "Noto Sans CJK SC"
# Always present, so table labels never miss a glyph.
BASE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F)) + "，。：；（）、“”→·—–…￥"


class CJKFontMissing(RuntimeError):
    """The server lacks the Noto CJK font that PDF receipts are set in."""


def font_path() -> str:
    path = settings.RECEIPT_PDF_FONT
    if not path or not os.path.exists(path):
        raise CJKFontMissing(
            f"PDF receipts need the Noto Sans CJK font at {path!r}: install Debian's "
            "fonts-noto-cjk, or point RECEIPT_PDF_FONT at NotoSansCJK-Regular.ttc"
        )
    return path


def _face_index(path: str) -> int | None:
    """Index of the Simplified Chinese face in a collection (None: a plain
    .otf/.ttf file)."""
    with open(path, "rb") as handle:
        if handle.read(4) != b"ttcf":
            return None
    collection = TTCollection(path, lazy=True)
    for index, face in enumerate(collection.fonts):
        if face["name"].getDebugName(4) == FACE:
            return index
    raise CJKFontMissing(f"{path!r} has no {FACE!r} face")


def _to_truetype(font: TTFont) -> None:
    """Replace the CFF table of ``font`` with TrueType outlines, in place."""
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(None)
        # CFF contours run counter-clockwise, TrueType clockwise.
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = glyphs
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    for tag in ("CFF ", "VORG"):
        if tag in font:
            del font[tag]
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attr in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    font["head"].glyphDataFormat = 0
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    font.sfntVersion = "\0\1\0\0"


def _rename(font: TTFont, suffix: str) -> None:
    """Give the subset its own PostScript name. ReportLab registers dynamic
    fonts by face name and silently reuses the first font registered under
    it: without this, every later subset (another language, another
    incident title) was drawn with the first one's glyphs, and its new
    characters printed as empty boxes."""
    ps_name = f"NotoSansCJKsc-Regular-{suffix}"
    for record in font["name"].names:
        if record.nameID == 6:
            record.string = ps_name
    if "CFF " in font:
        font["CFF "].cff.fontNames = [ps_name]


@lru_cache(maxsize=32)
def _font_bytes(path: str, chars: str, suffix: str = "") -> bytes:
    font = TTFont(path, fontNumber=_face_index(path) or 0, lazy=True)
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.desubroutinize = True
    # Horizontal Chinese needs no shaping or vertical metrics; skipping
    # these tables takes subsetting from about 2 s to about 1.3 s.
    options.drop_tables += ["vmtx", "vhea", "VORG", "GSUB", "GPOS", "GDEF", "BASE"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=chars)
    subsetter.subset(font)
    if suffix:
        _rename(font, suffix)
    if "CFF " in font:
        _to_truetype(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def register_cjk_font(text: str) -> str:
    """Register a font able to set ``text`` with ReportLab; returns its name.
    Raises CJKFontMissing, with the fix in the message, when the system font
    is absent."""
    path = font_path()
    chars = "".join(sorted(set(text) | set(BASE_CHARS)))
    digest = hashlib.sha256(chars.encode()).hexdigest()[:16]
    name = "NotoCJK-" + digest
    if name not in pdfmetrics.getRegisteredFontNames():
        font = ReportLabFont(name, io.BytesIO(_font_bytes(path, chars, digest)))
        pdfmetrics.registerFont(font)
    return name
