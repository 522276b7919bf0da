"""What a person reads on a page, and which of it is in the other language.

``visible_text()`` is text nodes, the title, and the attributes that are
announced or shown (placeholder, title, aria-label, alt, button values);
``foreign()`` finds English words in Chinese text and Chinese characters in
English text, after taking out data and codes (the justified allow-list).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# --- What a person reads ---------------------------------------------------

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
# Not copy: machine text shown as such (code samples, hashes) and what the
# person typed into a field.
SILENT = {"script", "style", "template", "noscript", "code", "pre", "kbd", "samp", "textarea"}
ANNOUNCED = ("title", "placeholder", "aria-label", "alt", "aria-description")


class _Reader(HTMLParser):
    def __init__(self, language: str):
        super().__init__(convert_charrefs=True)
        self.language = language
        self.stack: list[bool] = []  # True: this element and its content are skipped
        self.parts: list[str] = []

    @property
    def skipping(self) -> bool:
        return any(self.stack)

    def _skip(self, tag, attrs) -> bool:
        lang = attrs.get("lang")
        return (
            tag in SILENT
            or "hidden" in attrs
            # Marked as not to be translated (names, codes) or as another
            # language on purpose (the language switch).
            or attrs.get("translate") == "no"
            or (lang is not None and not _same_language(lang, self.language))
        )

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        skip = self._skip(tag, attrs)
        if not self.skipping and not skip:
            # Django's admin writes the alt of its yes/no icons in English
            # ("True", "False", "None"), untranslatable; the icon shows it.
            if tag == "img" and "/admin/img/icon-" in (attrs.get("src") or ""):
                attrs.pop("alt", None)
            for name in ANNOUNCED:
                if attrs.get(name):
                    self.parts.append(attrs[name])
            if tag == "input" and attrs.get("type") in {"submit", "button", "reset"}:
                self.parts.append(attrs.get("value") or "")
        if tag not in VOID:
            self.stack.append(skip)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not self.skipping and data.strip():
            self.parts.append(data.strip())


def _same_language(a: str, b: str) -> bool:
    return a.lower().split("-")[0] == b.lower().split("-")[0]


def visible_text(html: str, language: str) -> list[str]:
    reader = _Reader(language)
    reader.feed(html)
    reader.close()
    return reader.parts


# --- The other language -----------------------------------------------------

# Words that stay as they are in Chinese copy: file formats, protocol and
# standard names a member meets on screen as such, and units of data.
ALLOWED_WORDS = {
    "API",
    "JSON",
    "PDF",
    "CSV",
    "ZIP",
    "PNG",
    "JPEG",
    "JPG",
    "WebP",
    "GIF",
    "TXT",
    "LOG",
    "SHA",
    "HMAC",
    "TOTP",
    "UTC",
    "GMT",
    "IP",
    "ID",
    "URL",
    "Atom",
    "RSS",
    "OpenAPI",
    "EXIF",
    "GPS",
    "UTF",
    "GBK",
    "Python",  # the verification sample is Python code
    "Word",  # the file format (Microsoft Word), named as members know it
    "Axes",  # django-axes, the sign-in guard, named by its app label in the audit trail
    "KM",  # the member-number prefix, quoted in its format hint
    "KB",
    "MB",
    "GB",
    "px",
}
NOT_WORDS = [
    re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"),  # email addresses
    re.compile(r"https?://\S+"),  # addresses
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f-]{27}\b", re.I),  # uuids
    re.compile(
        r"[\w-]*[\d_*][\w*-]*"
    ),  # codes: KM00001234, kmn_Ab12, sh-node-01, md5, masked secrets
    re.compile(r"\b[0-9a-f]{8,}\b", re.I),  # hashes, ids
    re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]?[\d:.+Z-]*"),  # ISO times
    re.compile(r"\b(UTC|GMT)?[+-]\d{1,2}(:\d{2})?\b"),  # offsets
    re.compile(r"\b[A-Za-z]+/[A-Za-z_]+\b"),  # time zones (Asia/Shanghai)
    re.compile(r"/[\w./-]*"),  # paths
]
ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z']+")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff5e]")


def foreign(text: str, language: str, data_strings=()) -> str | None:
    """The part of ``text`` that is in the other language, if any."""
    for value in data_strings:
        if value in text:  # whole values only: "en" must not eat "Open"
            text = re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", " ", text)
    if language.startswith("zh"):
        for pattern in NOT_WORDS:
            text = pattern.sub(" ", text)
        words = [w for w in ENGLISH_WORD.findall(text) if w not in ALLOWED_WORDS]
        return " ".join(words) if words else None
    found = CJK.findall(text)
    return "".join(found) if found else None
