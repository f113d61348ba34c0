"""Fuzzing read_image with mutated JPEG, PNG and TIFF files (seeded; each read bounded in time).

Each mutation (bit flips, truncations, byte insertions, header field changes) of a small
corpus is read: 2000 in the default suite, 5 × 50,000 with --runslow, the same ones for the
same seed. read_image must return a proper image or raise a library error, never another
exception, never hang (each read must use under SECONDS_PER_READ of CPU time: wall time
would also count whatever else the machine runs, and on a busy machine a quick read failed);
and when a reference decoder reports the file damaged (libjpeg's warnings, libpng's CRC and
zlib errors, libtiff's errors, all through OpenCV with their messages captured), read_image
must not read it "successfully".
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from exposure_slot.errors import ExposureSlotError
from exposure_slot.files import read_image

tifffile = pytest.importorskip("tifffile")

PIXELS = np.ascontiguousarray(data.astronaut()[100:124:, 180:212])  # 24×32×3
PIXELS16 = (PIXELS.astype(np.uint16) * 257 + 100).astype(np.uint16)
# libjpeg's warnings that mean the pixels were made up (libpng/libtiff fail outright instead).
DAMAGE_WORDS = ("Corrupt JPEG data", "Premature end of JPEG file", "Invalid SOS parameters")
SECONDS_PER_READ = 1.0


def pillow_bytes(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def tifffile_bytes(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, **options)
    return buffer.getvalue()


def corpus() -> dict[str, bytes]:
    ok, png16 = cv2.imencode(".png", PIXELS16[..., ::-1].copy())
    assert ok
    return {
        "base.jpg": pillow_bytes(PIXELS, "JPEG", quality=90),
        "prog.jpg": pillow_bytes(PIXELS, "JPEG", quality=90, progressive=True),
        "gray.jpg": pillow_bytes(PIXELS[..., 1], "JPEG"),
        "rgb.png": pillow_bytes(PIXELS, "PNG"),
        "palette.png": pillow_bytes(np.asarray(Image.fromarray(PIXELS).quantize(16)), "PNG"),
        "rgb16.png": bytes(png16),
        "raw.tif": tifffile_bytes(PIXELS, photometric="rgb"),
        "deflate.tif": tifffile_bytes(PIXELS, photometric="rgb", compression="zlib"),
        "deflate16.tif": tifffile_bytes(
            PIXELS16, photometric="rgb", compression="zlib", predictor=True
        ),
        "lzw.tif": pillow_bytes(PIXELS, "TIFF", compression="tiff_lzw"),
    }


def _flip_bits(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(rng.integers(1, 5)):
        position = int(rng.integers(0, len(out)))
        out[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def _truncate(data: bytes, rng: np.random.Generator) -> bytes:
    cut = data[: int(rng.integers(1, len(data)))]
    # Half of them end like a complete file: JPEG EOI, PNG IEND, so no decoder sees EOF.
    if rng.random() < 0.5:
        if data[:2] == b"\xff\xd8":
            cut += b"\xff\xd9"
        elif data[:4] == b"\x89PNG":
            cut += data[-12:]
    return cut


def _insert(data: bytes, rng: np.random.Generator) -> bytes:
    position = int(rng.integers(0, len(data)))
    extra = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    return data[:position] + extra + data[position:]


def _header_field(data: bytes, rng: np.random.Generator) -> bytes:
    """Change a size field: JPEG SOF height/width, PNG IHDR (CRC kept valid), a TIFF tag value."""
    out = bytearray(data)
    value = int(rng.choice([0, 1, 2, 7, 31, 33, 64, 1000, 65535]))
    if data[:2] == b"\xff\xd8":
        sof = max(out.find(b"\xff\xc0"), out.find(b"\xff\xc2"))
        struct.pack_into(">H", out, sof + 5 + 2 * int(rng.integers(0, 2)), value)
    elif data[:4] == b"\x89PNG":
        field = int(rng.integers(0, 5))  # width, height, bit depth, colour type, interlace
        if field < 2:
            struct.pack_into(">I", out, 16 + 4 * field, value)
        else:
            out[24 + (field - 2) + (field > 2)] = value % 256
        struct.pack_into(">I", out, 29, zlib.crc32(bytes(out[12:29])))
    else:
        # A random directory entry's value (first directory of a little-endian TIFF).
        (ifd,) = struct.unpack_from("<I", out, 4)
        (count,) = struct.unpack_from("<H", out, ifd)
        entry = ifd + 2 + 12 * int(rng.integers(0, count))
        struct.pack_into("<H", out, entry + 8, value)
    return bytes(out)


MUTATIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "flip": _flip_bits,
    "truncate": _truncate,
    "insert": _insert,
    "header": _header_field,
}


def reference_reports_damage(data: bytes) -> bool:
    """libjpeg, libpng or libtiff (through OpenCV) fails, or libjpeg warns that it made pixels
    up."""
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            decoded = None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        report = capture.read().decode("utf-8", "replace")
    if any(word in report for word in DAMAGE_WORDS):
        return True
    failed = decoded is None or decoded.size == 0
    # libtiff's errors come as "TIFF_Error"; OpenCV's own TIFF limits (e.g. on RowsPerStrip)
    # are not damage. libjpeg and libpng fail only on data they cannot decode.
    return failed and (data[:4] != b"II*\x00" or "TIFF_Error" in report)


def fuzz(tmp_path: Path, seed: int, cases: int) -> None:
    """Read ``cases`` mutations, the same ones for the same seed."""
    rng = np.random.default_rng(seed)
    originals = corpus()
    for name, original in originals.items():  # the corpus itself is intact and readable
        (tmp_path / name).write_bytes(original)
        read_image(tmp_path / name)
    names, kinds = sorted(originals), sorted(MUTATIONS)
    for count in range(cases):
        name, kind = names[rng.integers(len(names))], kinds[rng.integers(len(kinds))]
        mutated = MUTATIONS[kind](originals[name], rng)
        path = tmp_path / f"m{count % 8}{Path(name).suffix}"
        path.write_bytes(mutated)
        case = f"case {count} (seed {seed}): {kind} of {name}"
        start = time.process_time()
        try:
            image = read_image(path)
        except ExposureSlotError as exc:
            assert str(path) in str(exc), f"{case}: the error does not name the file: {exc}"
            image = None
        except Exception as exc:
            (tmp_path / f"failing{Path(name).suffix}").write_bytes(mutated)
            pytest.fail(f"{case}: {type(exc).__name__} escaped: {exc}")
        elapsed = time.process_time() - start
        assert elapsed < SECONDS_PER_READ, f"{case}: took {elapsed:.1f} s of CPU time"
        if image is not None:
            assert np.isfinite(image.rgb).all() and 0 <= image.rgb.min() <= image.rgb.max() <= 1
            if reference_reports_damage(mutated):
                (tmp_path / f"failing{Path(name).suffix}").write_bytes(mutated)
                pytest.fail(f"{case}: the reference decoder reports damage, read_image read it")


def test_fuzz_mutated_files(tmp_path):
    fuzz(tmp_path, seed=22, cases=2000)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_fuzz_mutated_files_long(tmp_path, seed):
    fuzz(tmp_path, seed=1000 + seed, cases=50_000)
