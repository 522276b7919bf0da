"""Real files for evidence tests, made with Pillow on the fly."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def png_bytes(size=(64, 48), color=(200, 60, 30), exif_gps=False, fmt="PNG", trailing=b"") -> bytes:
    image = Image.new("RGB", size, color)
    out = io.BytesIO()
    kwargs = {}
    if exif_gps:
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate 90° when shown
        gps = exif.get_ifd(0x8825)
        gps[2] = (31.0, 14.0, 0.0)  # latitude
        gps[4] = (121.0, 28.0, 0.0)  # longitude
        kwargs["exif"] = exif
    image.save(out, fmt, **kwargs)
    return out.getvalue() + trailing


def upload(name="shot.png", data=None, content_type="image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(
        name, data if data is not None else png_bytes(), content_type=content_type
    )
