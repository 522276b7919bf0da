"""Hostile and broken files are refused with a clear reason; good ones are
re-encoded with no metadata left."""

import io
import struct
import zlib

import pytest
from PIL import Image

from appeals.evidence import EvidenceError, clean_log, clean_screenshot, clean_uploads, safe_name
from appeals.tests.factories import png_bytes, upload


def test_a_png_is_re_encoded_and_keeps_its_pixels():
    clean = clean_screenshot(upload())
    assert clean.fmt == "png" and clean.content_type == "image/png"
    image = Image.open(io.BytesIO(clean.data))
    assert image.size == (64, 48)
    assert image.getpixel((5, 5))[:3] == (200, 60, 30)


def test_exif_and_gps_are_stripped_and_orientation_applied():
    clean = clean_screenshot(
        upload("photo.jpg", png_bytes(exif_gps=True, fmt="JPEG"), "image/jpeg")
    )
    image = Image.open(io.BytesIO(clean.data))
    assert image.size == (48, 64)  # rotated upright per the EXIF orientation
    assert not image.getexif()
    assert b"Exif" not in clean.data


def test_webp_is_accepted():
    assert clean_screenshot(upload("s.webp", png_bytes(fmt="WEBP"), "image/webp")).fmt == "webp"


def test_trailing_payload_after_the_image_does_not_survive():
    payload = b"<script>alert(1)</script>PK\x03\x04zipzip"
    clean = clean_screenshot(upload("polyglot.png", png_bytes(trailing=payload)))
    assert payload not in clean.data


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("vector.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        ("page.png", b"<!DOCTYPE html><html><script>alert(1)</script></html>"),
        ("doc.png", b"%PDF-1.7\n1 0 obj << >> endobj"),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
        ("empty.png", b""),
        ("exe.png", b"MZ\x90\x00" + b"\x00" * 100),
    ],
)
def test_things_that_are_not_jpeg_png_or_webp_are_refused(name, data):
    with pytest.raises(EvidenceError) as info:
        clean_screenshot(upload(name, data))
    assert info.value.code == "not_an_image"
    assert name in info.value.message


def test_a_truncated_image_is_refused_as_damaged():
    data = png_bytes(size=(400, 400))
    with pytest.raises(EvidenceError) as info:
        clean_screenshot(upload("cut.png", data[: len(data) // 2]))
    assert info.value.code in ("damaged", "not_an_image")


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # A tiny compressed stream that would inflate to gigabytes if decoded.
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_from_the_header_without_decoding():
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(EvidenceError) as info:
        clean_screenshot(upload("bomb.png", _png_header_only(50_000, 50_000)))
    assert info.value.code == "too_many_pixels"
    assert time.monotonic() - started < 2
    # Less than 50 MB more memory at peak (decoding would need 7.5 GB).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


def test_just_over_40_megapixels_is_refused_with_a_clear_reason():
    with pytest.raises(EvidenceError) as info:
        clean_screenshot(upload("big.png", _png_header_only(8000, 5001)))
    assert info.value.code == "too_many_pixels"
    assert "40" in info.value.message


def test_exactly_40_megapixels_passes_the_pixel_check():
    with pytest.raises(EvidenceError) as info:  # the header-only file fails later, as damaged
        clean_screenshot(upload("edge.png", _png_header_only(8000, 5000)))
    assert info.value.code == "damaged"


def test_oversized_file_is_refused_before_reading_it_all():
    big = upload("huge.png", b"\x89PNG" + b"\x00" * (10 * 1024 * 1024 + 1))
    with pytest.raises(EvidenceError) as info:
        clean_screenshot(big)
    assert info.value.code == "too_large"


def test_logs_must_be_plain_text():
    assert (
        clean_log(upload("client.log", "连接断开 12:00\n".encode(), "text/plain")).data.decode()
        == "连接断开 12:00\n"
    )
    assert (
        clean_log(upload("gbk.log", "掉线".encode("gb18030"), "text/plain")).data.decode() == "掉线"
    )
    for name, data in [
        ("bin.log", b"\x00\x01\x02"),
        ("page.txt", b"<html><body>x</body></html>"),
        ("x.log", b"%PDF-1.4"),
    ]:
        with pytest.raises(EvidenceError) as refused:
            clean_log(upload(name, data, "text/plain"))
        assert (refused.value.code, refused.value.filename) == ("not_text", name)
    with pytest.raises(EvidenceError) as info:
        clean_log(upload("long.log", b"a" * (2 * 1024 * 1024 + 1), "text/plain"))
    assert info.value.code == "too_large"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("shot\x00.png", "shot.png"),
        (".htaccess", "htaccess"),
        ("", "file"),
        ("截图 1.png", "截图 1.png"),
    ],
)
def test_file_names_are_made_safe_for_display(raw, expected):
    assert safe_name(raw) == expected


def test_at_least_one_screenshot_and_at_most_ten():
    with pytest.raises(EvidenceError) as refused:
        clean_uploads(screenshots=[], logs=[], require_screenshot=True)
    assert refused.value.code == "no_screenshot"
    with pytest.raises(EvidenceError) as refused:
        clean_uploads(screenshots=[upload() for _ in range(11)], logs=[], require_screenshot=True)
    assert refused.value.code == "too_many_files"
    assert len(clean_uploads(screenshots=[upload()], logs=[], require_screenshot=True)) == 1
