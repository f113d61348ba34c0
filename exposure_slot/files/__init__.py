"""Image files: reading a photo into float RGB plus all that is needed to write the corrected
one back alike (alpha, bit depth, colour kind, ICC profile, EXIF, XMP, dpi), and writing it.

The public names are here; where each concern lives:

* ``_read``: :func:`read_image` (path checks, pixel limit, which picture of the file);
* ``_decode``: :class:`ImageData` and the decode policy (modes, 16 bits, alpha, orientation);
* ``_integrity``: damage checks (a damaged file is an error, never a picture);
* ``_opencv``: decoding with OpenCV, with libjpeg's warnings caught;
* ``_tiff_layout``: a TIFF's strips and layout tags;
* ``_metadata``: EXIF and XMP (Orientation reset), dpi, JPEG comment and APP13;
* ``_write``: :func:`write_image` (the output mode matching the input);
* ``_encoders``: Pillow's encoders and our 16-bit PNG and TIFF writers;
* ``_mark``: the mark in every file we write, and :func:`is_our_output`;
* ``_atomic``: writing through a temporary file and a rename;
* ``_formats``: which extensions are read and written, what each written format holds;
* ``_paths``: path arguments and OS errors in messages.
"""

from __future__ import annotations

from exposure_slot.pixel_values import from_uint, to_uint

from ._atomic import atomic_write_bytes, remove_stale_temp_files
from ._decode import ImageData
from ._formats import READABLE_EXTENSIONS, WRITABLE_EXTENSIONS
from ._mark import is_our_output
from ._read import DEFAULT_MAX_PIXELS, read_image
from ._write import DEFAULT_QUALITY, write_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "READABLE_EXTENSIONS",
    "WRITABLE_EXTENSIONS",
    "ImageData",
    "atomic_write_bytes",
    "from_uint",
    "is_our_output",
    "read_image",
    "remove_stale_temp_files",
    "to_uint",
    "write_image",
]
