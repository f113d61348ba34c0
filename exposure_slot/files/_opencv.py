"""Decoding a file with OpenCV, and catching what libjpeg prints meanwhile.

OpenCV decodes what Pillow cannot (16-bit colour), and its libjpeg tells damage that Pillow's
passes over; it tells it only on file descriptor 2, which is captured here.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading

import cv2
import numpy as np

OPENCV_MAX_PIXELS = 1 << 30
"""OpenCV's default limit on decoded pixels (OPENCV_IO_MAX_IMAGE_PIXELS)."""
# libjpeg's warnings about the scan data (jerror.h JWRN_*): each means pixels were made up.
LIBJPEG_DAMAGE = re.compile(
    r"^(Corrupt JPEG data.*|Premature end of JPEG file|Invalid SOS parameters.*"
    r"|Inconsistent progression sequence.*)$\n?",
    re.MULTILINE,
)
# OpenCV's own log lines (and their continuation lines) about a decode that failed.
_OPENCV_LOG = re.compile(r"^(\[\s*(ERROR|WARN|INFO).*|>.*)$\n?", re.MULTILINE)
_STDERR_LOCK = threading.Lock()


def opencv_decode(name: str, flags: int) -> np.ndarray | None:
    """``cv2.imdecode`` of a file, None where OpenCV cannot decode it."""
    return opencv_decode_reporting(name, flags)[0]


def opencv_decode_reporting(name: str, flags: int) -> tuple[np.ndarray | None, str]:
    """``cv2.imdecode`` of a file, and what its C libraries wrote to stderr meanwhile.

    libjpeg reports damage only as a warning that C code prints to file descriptor 2, so that
    descriptor points at a temporary file during the decode (one decode at a time). Anything
    else written there meanwhile, other than OpenCV's own log, is passed on to stderr.
    """
    data = np.fromfile(name, dtype=np.uint8)
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            saved: int | None = os.dup(2)
        except OSError:  # no descriptor 2 (a daemon): leave it closed afterwards
            saved = None
        os.dup2(capture.fileno(), 2)
        try:
            decoded = cv2.imdecode(data, flags)
        except cv2.error:
            decoded = None
        finally:
            if saved is None:
                os.close(2)
            else:
                os.dup2(saved, 2)
                os.close(saved)
        capture.seek(0)
        report = capture.read().decode("utf-8", "replace")
    others = _OPENCV_LOG.sub("", LIBJPEG_DAMAGE.sub("", report))
    if others and sys.stderr is not None:
        sys.stderr.write(others)
        sys.stderr.flush()
    return (decoded if decoded is not None and decoded.size else None), report
