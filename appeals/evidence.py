"""Validating and sanitising uploaded evidence.

Screenshots are opened with Pillow restricted to JPEG, PNG and WebP, their
pixel count is checked from the header before any decoding (decompression
bombs are refused fast and without large memory), then they are decoded,
turned upright from their EXIF orientation and re-encoded from pixels alone:
no EXIF/GPS, no trailing bytes, no embedded payload survives. Logs must be
plain text. Nothing the uploader named reaches the filesystem.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass

from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from .models import EvidenceKind

MAX_SCREENSHOTS = 10
MAX_LOGS = 5
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
# Decoding costs CPU in proportion to pixels (about 20 ms per megapixel
# here), and small files can declare huge images: ten blank 6000 × 6000 PNGs
# fit in 1 MB. One request may decode at most this many pixels in total:
# one image at the per-image limit plus a few screenshots, or five 12 MP
# phone photos. Counted from the headers before anything is decoded.
MAX_PIXELS_PER_REQUEST = 60_000_000
MAX_LOG_BYTES = 2 * 1024 * 1024
# Everything one request may carry: all screenshots and logs at their limits,
# plus the text fields. Larger bodies are refused before they are read.
MAX_REQUEST_BYTES = MAX_SCREENSHOTS * MAX_IMAGE_BYTES + MAX_LOGS * MAX_LOG_BYTES + 1024 * 1024

_FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}

# Pillow's own guard, in line with ours: beyond this it raises rather than
# allocate (our header check below refuses earlier, with a clear message).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class EvidenceError(ValueError):
    def __init__(self, filename: str, message: str, code: str):
        super().__init__(message)
        self.filename = filename
        self.message = message
        self.code = code


@dataclass(frozen=True)
class CleanFile:
    kind: str  # an EvidenceKind
    fmt: str
    content_type: str
    data: bytes
    original_name: str
    width: int | None = None
    height: int | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


def safe_name(name: str | None) -> str:
    """A display name only: last path component, no control characters,
    bounded length. Storage names are random and never derived from it."""
    name = (name or "").replace("\\", "/").split("/")[-1]
    name = "".join(
        ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C"
    )
    name = name.strip().lstrip(".") or "file"
    stem, ext = os.path.splitext(name)
    return (stem[: 100 - len(ext[:10])] + ext[:10]) or "file"


# Characters Windows refuses in a file name (":" would even open an NTFS
# alternate data stream), and the device names it reserves in any folder.
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICES = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
# Bytes, not characters: file systems count the UTF-8 name (255 on most).
MAX_MEMBER_NAME_BYTES = 180


def zip_member_name(name: str) -> str:
    """One path component a third party can unpack on any system: no folder
    parts (``../../x`` and ``C:\\x`` become ``x``), no control or bidi
    characters, nothing Windows forbids or reserves, no trailing dot or
    space, bounded in bytes; the member's own words (Chinese included) kept.
    Upload already stores names through ``safe_name``; archives (the
    mediation bundle, the data export) apply this again, so a row written
    any other way cannot escape either."""
    name = _WINDOWS_FORBIDDEN.sub("_", safe_name(name)).rstrip(" .")
    if _WINDOWS_DEVICES.match(name):
        name = "_" + name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    ext = ("." + ext) if dot else ""
    while len((stem + ext).encode()) > MAX_MEMBER_NAME_BYTES and stem:
        stem = stem[:-1]
    return (stem.rstrip(" .") + ext) if stem.strip(" .") else ("file" + ext if ext else "file")


def _read_bounded(upload, limit: int, name: str) -> bytes:
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise EvidenceError(
            name,
            _("%(name)s is too large (%(size)s MB; at most %(max)s MB).")
            % {"name": name, "size": f"{size / 1048576:.1f}", "max": limit // 1048576},
            "too_large",
        )
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise EvidenceError(
            name,
            _("%(name)s is too large (at most %(max)s MB).")
            % {"name": name, "max": limit // 1048576},
            "too_large",
        )
    return data


@dataclass
class _Probed:
    """A screenshot whose header was read and checked, not yet decoded."""

    name: str
    image: Image.Image
    fmt: str

    @property
    def pixels(self) -> int:
        return self.image.width * self.image.height


def _damaged(name: str) -> EvidenceError:
    return EvidenceError(name, _("%(name)s is damaged or incomplete.") % {"name": name}, "damaged")


def _probe_screenshot(upload) -> _Probed:
    """Read the header only: format and dimensions, refused before decoding."""
    name = safe_name(getattr(upload, "name", ""))
    data = _read_bounded(upload, MAX_IMAGE_BYTES, name)
    not_image = EvidenceError(
        name, _("%(name)s is not a JPEG, PNG or WebP image.") % {"name": name}, "not_an_image"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(_FORMATS))
            width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses at open time, from the header: nothing was decoded.
        raise EvidenceError(
            name,
            _("%(name)s has too many pixels (at most 40 megapixels).") % {"name": name},
            "too_many_pixels",
        ) from exc
    except UnidentifiedImageError as exc:
        raise not_image from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise _damaged(name) from exc
    if width * height > MAX_PIXELS:
        raise EvidenceError(
            name,
            _("%(name)s has too many pixels (%(w)d × %(h)d; at most 40 megapixels).")
            % {"name": name, "w": width, "h": height},
            "too_many_pixels",
        )
    if image.format not in _FORMATS:
        raise not_image
    return _Probed(name=name, image=image, fmt=image.format)


def clean_screenshot(upload) -> CleanFile:
    return _decode_screenshot(_probe_screenshot(upload))


def _decode_screenshot(probed: _Probed) -> CleanFile:
    name, image, fmt = probed.name, probed.image, probed.fmt
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.seek(0)  # animated images: the first frame is the evidence
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombWarning) as exc:
        raise _damaged(name) from exc
    image = ImageOps.exif_transpose(image)
    ext, content_type = _FORMATS[fmt]
    out = io.BytesIO()
    if fmt == "JPEG":
        image = image.convert("RGB")
        image.save(out, "JPEG", quality=90)
    elif fmt == "PNG":
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA")
        image.save(out, "PNG", compress_level=3)
    else:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image.save(out, "WEBP", quality=90)
    return CleanFile(
        kind=EvidenceKind.SCREENSHOT,
        fmt=ext,
        content_type=content_type,
        data=out.getvalue(),
        original_name=name,
        width=image.width,
        height=image.height,
    )


def clean_log(upload) -> CleanFile:
    name = safe_name(getattr(upload, "name", ""))
    data = _read_bounded(upload, MAX_LOG_BYTES, name)
    if b"\x00" in data:
        raise EvidenceError(
            name, _("%(name)s is not a plain-text log.") % {"name": name}, "not_text"
        )
    for encoding in ("utf-8", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise EvidenceError(
            name, _("%(name)s is not a plain-text log.") % {"name": name}, "not_text"
        )
    if text.lstrip()[:15].lower().startswith(("<!doctype", "<html", "<svg", "%pdf")):
        raise EvidenceError(
            name, _("%(name)s is not a plain-text log.") % {"name": name}, "not_text"
        )
    return CleanFile(
        kind=EvidenceKind.LOG,
        fmt="txt",
        content_type="text/plain; charset=utf-8",
        data=text.encode("utf-8"),
        original_name=name,
    )


def clean_uploads(*, screenshots: list, logs: list, require_screenshot: bool) -> list[CleanFile]:
    """Clean every file or raise on the first bad one (named). Nothing is
    stored before all of them are good."""
    if require_screenshot and not screenshots:
        raise EvidenceError("", _("Attach at least one screenshot."), "no_screenshot")
    if len(screenshots) > MAX_SCREENSHOTS:
        raise EvidenceError(
            "",
            _("At most %(n)d screenshots per appeal.") % {"n": MAX_SCREENSHOTS},
            "too_many_files",
        )
    if len(logs) > MAX_LOGS:
        raise EvidenceError(
            "", _("At most %(n)d log files at a time.") % {"n": MAX_LOGS}, "too_many_files"
        )
    # Every header first, so a request over the pixel budget is refused
    # before any of its images costs decoding time.
    probed = []
    total = 0
    for upload in screenshots:
        item = _probe_screenshot(upload)
        total += item.pixels
        if total > MAX_PIXELS_PER_REQUEST:
            raise EvidenceError(
                item.name,
                _(
                    "%(name)s goes over the %(max)d megapixels one submission may hold in total; send the other screenshots in a reply."
                )
                % {"name": item.name, "max": MAX_PIXELS_PER_REQUEST // 1_000_000},
                "too_many_pixels_total",
            )
        probed.append(item)
    logs_clean = [clean_log(f) for f in logs]
    return [_decode_screenshot(item) for item in probed] + logs_clean
