"""The file formats: which files are read, which are written and what each written one holds.

Also the two PNG facts that both the damage check and our 16-bit PNG encoder use.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

_UNDECODABLE_FORMATS = frozenset({"BUFR", "GRIB", "HDF5", "MPEG", "EPS", "WMF", "IPTC"})
"""Pillow formats that it identifies but cannot decode here (stubs, or an external program)."""


def _readable_extensions() -> frozenset[str]:
    Image.init()
    return frozenset(
        ext
        for ext, name in Image.registered_extensions().items()
        if name in Image.OPEN and name not in _UNDECODABLE_FORMATS
    )


READABLE_EXTENSIONS: frozenset[str] = _readable_extensions()
"""Extensions (lower case) of the files :func:`read_image` decodes with this Pillow build:
the files a folder of inputs is searched for (AVIF and JPEG 2000 where Pillow has them)."""


@dataclass(frozen=True)
class Format:
    """What an output format can hold."""

    pillow_name: str
    gray: bool = True
    alpha: bool = True
    sixteen_bit: bool = False
    metadata: bool = True  # ICC profile, EXIF, XMP
    lossy: bool = False


JPEG_FORMAT = Format("JPEG", alpha=False, lossy=True)
TIFF_FORMAT = Format("TIFF", sixteen_bit=True)
FORMATS: dict[str, Format] = {
    ".jpg": JPEG_FORMAT,
    ".jpeg": JPEG_FORMAT,
    ".png": Format("PNG", sixteen_bit=True),
    ".tif": TIFF_FORMAT,
    ".tiff": TIFF_FORMAT,
    ".webp": Format("WEBP", gray=False, lossy=True),
    ".bmp": Format("BMP", alpha=False, metadata=False),
}
WRITABLE_EXTENSIONS: tuple[str, ...] = tuple(sorted(FORMATS))
"""File extensions :func:`write_image` accepts (case-insensitive)."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
"""Samples per pixel of each PNG colour type: gray, RGB, palette, gray+alpha, RGBA."""
