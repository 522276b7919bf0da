"""The Chinese catalog is complete and compiled, so no page falls back to English."""

from pathlib import Path

from django.conf import settings
from django.utils import translation

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _entries(text: str):
    entry, field = {}, None
    for line in text.splitlines() + [""]:
        line = line.strip()
        if not line:
            if entry.get("msgid"):
                yield entry
            entry, field = {}, None
        elif line.startswith("#,"):
            entry["flags"] = line
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgid ", "msgid_plural ", "msgstr ", "msgstr[0] ", "msgctxt ")):
            field, _, value = line.partition(" ")
            entry[field] = value[1:-1]
        elif line.startswith('"') and field:
            entry[field] += line[1:-1]


def test_every_chinese_entry_is_translated_and_not_fuzzy():
    missing = []
    for entry in _entries(PO.read_text(encoding="utf-8")):
        translated = entry.get("msgstr") or entry.get("msgstr[0]")
        if not translated or "fuzzy" in entry.get("flags", ""):
            missing.append(entry["msgid"])
    assert missing == []


def test_compiled_catalog_matches_the_source():
    """The .mo that Django loads is compiled from this .po (make compiles it)."""
    mismatched = []
    with translation.override("zh-hans"):
        for entry in _entries(PO.read_text(encoding="utf-8")):
            if (
                "msgstr" not in entry
                or "msgctxt" in entry
                or "%" in entry["msgid"]
                or "\\" in entry["msgid"]
            ):
                continue
            if translation.gettext(entry["msgid"]) != entry["msgstr"]:
                mismatched.append(entry["msgid"])
    assert mismatched == []
