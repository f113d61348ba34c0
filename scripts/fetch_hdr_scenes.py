"""Turn licence-clean real HDR captures into scene radiance for training and validation.

Run as::

    python scripts/fetch_hdr_scenes.py --openexr-images GITDIR --exif-samples GITDIR

where the two ``GITDIR`` are bare git directories of the public repositories
``AcademySoftwareFoundation/openexr-images`` and ``ianare/exif-samples`` (e.g. fetched
snapshots); the Debian packages ``blender-data`` and ``psychtoolbox-3-common`` are fetched
with ``apt-get download`` as in ``fetch_photos.py``. Reading OpenEXR needs the ``openexr``
Python bindings (``pip install openexr``; data preparation only, not a dependency of the
library).

Sources (every licence is checked against the source's own text before anything is
written):

- the OpenEXR sample images (BSD-3-Clause, Industrial Light & Magic and OpenEXR
  contributors: the repository's ``COPYING`` and each folder's ``README.rst``): photographs
  in RGB, luminance/chroma (converted to RGB) or with their own primaries (converted to
  Rec. 709); the monochrome ones are left out;
- ``Ocean.exr`` of ``psychtoolbox-3-common`` (the same ILM sample, BSD-3 per the package's
  copyright file);
- Poly Haven panoramas in ``blender-data`` (``studiolights/world``: CC0 per the
  ``license.txt`` beside them);
- more Poly Haven panoramas in the npm package ``@pmndrs/assets`` (``hdri/*.exr.js``: base64
  OpenEXR files, 512x256, lossy DWAB; CC0 per the package's ``LICENSE`` and
  ``package.json``), fetched with ``npm pack``.

Each scene is saved as linear Rec. 709 radiance, float16 ``.npy`` (HxWx3), downsized so its
long side is at most ``--long-side``; latitude-longitude panoramas keep only the band within
``PANORAMA_LATITUDE`` of the horizon, where they look like a photograph. The radiance is
scaled so that the reference camera of ``fetch_real_brackets.py`` renders it at EV 0 with
mean luma 0.45 (a well-exposed frame). Whole scenes are held out for validation
(``VALIDATION_SCENES``), so no scene's crops straddle training and validation; a few more
are held out as a test split (``TEST_SCENES``) that no training or snapshot choice looks at.

The two real photo pairs of ``exif-samples`` (``jpg/hdr/``: the same scene with the camera's
HDR mode off and on, CC-BY-SA-4.0) are copied to ``--pairs-out`` (downsized) as real test
pictures. The record of every file goes to ``docs/hdr_scenes.csv``.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import cv2
import fetch_photos
import numpy as np
from fetch_real_brackets import normalise
from PIL import Image, ImageOps

try:
    import OpenEXR
except ImportError:  # pragma: no cover - data preparation only
    sys.exit("fetch_hdr_scenes.py needs the OpenEXR bindings: pip install openexr")

OPENEXR_REPO = "AcademySoftwareFoundation/openexr-images"
OPENEXR_SCENES = [
    "ScanLines/CandleGlass.exr",
    "ScanLines/Cannon.exr",
    "ScanLines/Carrots.exr",
    "ScanLines/Desk.exr",
    "ScanLines/MtTamWest.exr",
    "ScanLines/StillLife.exr",
    "ScanLines/Tree.exr",
    "LuminanceChroma/CrissyField.exr",
    "LuminanceChroma/Flowers.exr",
    "LuminanceChroma/MtTamNorth.exr",
    "MultiResolution/Bonita.exr",
    "MultiResolution/KernerEnvLatLong.exr",
    "MultiResolution/StageEnvLatLong.exr",
    "Tiles/GoldenGate.exr",
    "MultiView/Adjuster.exr",
]
BLENDER_PACKAGE = "blender-data"
BLENDER_DIR = "usr/share/blender/datafiles/studiolights/world"
BLENDER_SCENES = [
    "city",
    "courtyard",
    "forest",
    "interior",
    "night",
    "studio",
    "sunrise",
    "sunset",
]
NPM_PACKAGE, NPM_VERSION = "@pmndrs/assets", "1.7.0"
NPM_SHA256 = "152bd218a3390703f184f0c6ce16e73c8f0a87f32d38530d418a09d33d8208dc"
# Its studio, sunrise and night are the same Poly Haven panoramas as blender-data's, and its
# sky has no ground: those four are left out.
NPM_SCENES = [
    "apartment",
    "bridge",
    "city",
    "dawn",
    "esplanade",
    "forest",
    "hall",
    "lab",
    "lobby",
    "park",
    "sunset",
    "venice",
    "warehouse",
    "workshop",
]
PSYCHTOOLBOX_PACKAGE = "psychtoolbox-3-common"
PSYCHTOOLBOX_OCEAN = "usr/share/psychtoolbox-3/PsychDemos/OpenEXRImages/Ocean.exr"
EXIF_REPO = "ianare/exif-samples"
EXIF_PAIRS = ["canon", "iphone"]
# Whole scenes held out for validation, chosen by eye to span the kinds of scene: a window
# interior, candle light, a backlit landscape, dusk, a close-up, a sunset and a lit interior.
VALIDATION_SCENES = {
    "openexr-images__Desk",
    "openexr-images__StillLife",
    "openexr-images__MtTamWest",
    "openexr-images__GoldenGate",
    "openexr-images__Cannon",
    "blender-data__sunset",
    "blender-data__interior",
}
# Whole scenes held out as a test split, used only to report the weights finally chosen:
# an interior with windows, a lit hall and a sunny waterfront.
TEST_SCENES = {
    "pmndrs-assets__lab",
    "pmndrs-assets__warehouse",
    "pmndrs-assets__venice",
}
PANORAMA_LATITUDE = 45.0
REC709_PRIMARIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
CSV_COLUMNS = [
    "file",
    "source",
    "source_version",
    "original_path",
    "licence",
    "licence_evidence",
    "author_or_copyright",
    "sha256_of_source",
    "sha256_of_saved_file",
    "split",
    "kind",
]


def git_show(git_dir: Path, path: str) -> bytes:
    """A file of the HEAD commit of a bare git directory."""
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"HEAD:{path}"], capture_output=True, check=True
    ).stdout


def git_head(git_dir: Path) -> str:
    return fetch_photos.run(["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"]).strip()


def require(text: str, needle: str, where: str) -> None:
    """Stop unless a licence text says what the record will claim."""
    if needle not in text:
        raise RuntimeError(f"licence check failed: {needle!r} not found in {where}")


def split_of(name: str) -> str:
    """A scene's split in the record: ``val``, ``test`` or ``train``."""
    if name in VALIDATION_SCENES:
        return "val"
    return "test" if name in TEST_SCENES else "train"


def rgb_to_xyz(primaries: tuple[float, ...]) -> np.ndarray:
    """The RGB-to-XYZ matrix of chromaticities ``(rx, ry, gx, gy, bx, by, wx, wy)``."""
    xy = np.asarray(primaries, dtype=np.float64).reshape(4, 2)
    xyz = np.stack([xy[:, 0] / xy[:, 1], np.ones(4), (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]])
    scale = np.linalg.solve(xyz[:, :3], xyz[:, 3])
    return xyz[:, :3] * scale


def read_exr(data: bytes, clip: bool = True) -> np.ndarray:
    """Linear Rec. 709 RGB (float64, HxWx3) of an OpenEXR file's RGB or Y/RY/BY channels,
    negative values clipped to 0 unless ``clip`` is false."""
    with tempfile.NamedTemporaryFile(suffix=".exr") as tmp:
        tmp.write(data)
        tmp.flush()
        with OpenEXR.File(tmp.name, separate_channels=True) as exr:
            channels = {k: v.pixels.astype(np.float64) for k, v in exr.channels().items()}
            primaries = exr.header().get("chromaticities")
    primaries = tuple(primaries) if primaries is not None else REC709_PRIMARIES
    to_xyz = rgb_to_xyz(primaries)
    if {"R", "G", "B"} <= channels.keys():
        rgb = np.stack([channels["R"], channels["G"], channels["B"]], axis=-1)
    elif {"Y", "RY", "BY"} <= channels.keys():
        # Luminance/chroma (OpenEXR's RgbaYca): RY = (R - Y) / Y, BY = (B - Y) / Y at half
        # resolution; Y weights are the luminance row of the file's primaries.
        y = channels["Y"]
        size = (y.shape[1], y.shape[0])
        ry = cv2.resize(channels["RY"], size, interpolation=cv2.INTER_LINEAR)
        by = cv2.resize(channels["BY"], size, interpolation=cv2.INTER_LINEAR)
        r, b = y * (1 + ry), y * (1 + by)
        weights = to_xyz[1]
        g = (y - weights[0] * r - weights[2] * b) / weights[1]
        rgb = np.stack([r, g, b], axis=-1)
    else:
        raise RuntimeError(f"no RGB or luminance/chroma channels: {sorted(channels)}")
    rgb = np.nan_to_num(rgb, nan=0.0, posinf=0.0, neginf=0.0)
    if primaries != REC709_PRIMARIES:
        rgb = rgb @ (np.linalg.inv(rgb_to_xyz(REC709_PRIMARIES)) @ to_xyz).T
    return np.maximum(rgb, 0.0) if clip else rgb


def fill_negative(rgb: np.ndarray, size: int = 7) -> np.ndarray:
    """Replace pixels with a negative channel by the mean of their valid neighbours.

    Lossy DWAB compression rings around bright lights into negative values; clipped to 0
    they would render as black specks in every brightened frame."""
    valid = (rgb.min(axis=-1) >= 0).astype(np.float64)
    total = cv2.blur(rgb * valid[..., None], (size, size))
    count = cv2.blur(valid, (size, size))[..., None]
    return np.where(valid[..., None] > 0, rgb, total / np.maximum(count, 1e-9))


def prepare(radiance: np.ndarray, long_side: int, panorama: bool) -> np.ndarray:
    """Crop a panorama to its horizon band, downsize and normalise; float16 HxWx3."""
    if panorama:
        h = radiance.shape[0]
        band = round(h * PANORAMA_LATITUDE / 180.0)
        radiance = radiance[h // 2 - band : h // 2 + band]
    h, w = radiance.shape[:2]
    scale = long_side / max(h, w)
    if scale < 1:
        size = (round(w * scale), round(h * scale))
        radiance = cv2.resize(radiance, size, interpolation=cv2.INTER_AREA)
    radiance = normalise(radiance)
    return np.minimum(radiance, np.finfo(np.float16).max).astype(np.float16)


def save_scene(
    name: str, data: bytes, radiance: np.ndarray, out: Path, **record: str
) -> dict[str, str]:
    """Save a scene (read from the source file ``data``) as ``out/<name>.npy`` and return its
    row of the record; ``record`` gives the columns that depend on where it came from
    (source, licence, kind)."""
    path = out / f"{name}.npy"
    np.save(path, radiance)
    return {
        "file": path.name,
        **record,
        "sha256_of_source": hashlib.sha256(data).hexdigest(),
        "sha256_of_saved_file": hashlib.sha256(path.read_bytes()).hexdigest(),
        "split": split_of(name),
    }


def openexr_scenes(git_dir: Path, out: Path, long_side: int) -> list[dict[str, str]]:
    commit = git_head(git_dir)
    copying = git_show(git_dir, "COPYING").decode()
    require(copying, "Industrial Light & Magic", f"{OPENEXR_REPO}/COPYING")
    require(copying, "Redistribution and use in source and binary forms", "COPYING")
    rows = []
    for path in OPENEXR_SCENES:
        folder = path.split("/")[0]
        readme = git_show(git_dir, f"{folder}/README.rst").decode()
        require(readme, "SPDX-License-Identifier: BSD-3-Clause", f"{folder}/README.rst")
        require(readme, Path(path).name, f"{folder}/README.rst")
        data = git_show(git_dir, path)
        name = f"openexr-images__{Path(path).stem}"
        radiance = prepare(read_exr(data), long_side, panorama="LatLong" in path)
        rows.append(
            save_scene(
                name,
                data,
                radiance,
                out,
                source=f"github:{OPENEXR_REPO}",
                source_version=commit,
                original_path=path,
                licence="BSD-3-Clause",
                licence_evidence=f"COPYING; {folder}/README.rst (SPDX-License-Identifier)",
                author_or_copyright="2004 Industrial Light & Magic; "
                "Contributors to the OpenEXR Project",
                kind="scene radiance, linear Rec.709 (EV 0 = well exposed)",
            )
        )
    return rows


def package_scenes(cache: Path, out: Path, long_side: int) -> list[dict[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        versions = {}
        for package in (BLENDER_PACKAGE, PSYCHTOOLBOX_PACKAGE):
            deb = fetch_photos.download_package(package, cache)
            versions[package] = fetch_photos.run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
            fetch_photos.run(["dpkg-deb", "-x", str(deb), str(root)])
        licence_txt = (root / BLENDER_DIR / "license.txt").read_text()
        require(licence_txt, "CC0", f"{BLENDER_PACKAGE}:{BLENDER_DIR}/license.txt")
        copyright_ = (root / f"usr/share/doc/{PSYCHTOOLBOX_PACKAGE}/copyright").read_text()
        stanza = re.search(
            r"Files: Psychtoolbox/PsychDemos/OpenEXRImages\n(.*?)\n\n", copyright_, re.S
        )
        require(stanza.group(1) if stanza else "", "License: BSD-3", "psychtoolbox copyright")
        sources = [
            (BLENDER_PACKAGE, f"{BLENDER_DIR}/{scene}.exr", True) for scene in BLENDER_SCENES
        ] + [(PSYCHTOOLBOX_PACKAGE, PSYCHTOOLBOX_OCEAN, False)]
        for package, member, panorama in sources:
            data = (root / member).read_bytes()
            name = f"{package}__{Path(member).stem}"
            radiance = prepare(read_exr(data), long_side, panorama)
            if package == BLENDER_PACKAGE:
                licence, evidence = "CC0-1.0", f"{BLENDER_DIR}/license.txt"
                author = "Greg Zaal (HDRI Haven / Poly Haven)"
                kind = "panorama horizon band, radiance, linear Rec.709 (EV 0 = well exposed)"
            else:
                licence = "BSD-3-Clause"
                evidence = "debian/copyright, Files: Psychtoolbox/PsychDemos/OpenEXRImages"
                author = "2004 Industrial Light & Magic"
                kind = "scene radiance, linear Rec.709 (EV 0 = well exposed)"
            rows.append(
                save_scene(
                    name,
                    data,
                    radiance,
                    out,
                    source=f"debian:{package}",
                    source_version=versions[package],
                    original_path=member,
                    licence=licence,
                    licence_evidence=evidence,
                    author_or_copyright=author,
                    kind=kind,
                )
            )
    return rows


def npm_scenes(cache: Path, out: Path, long_side: int) -> list[dict[str, str]]:
    """The Poly Haven panoramas of ``@pmndrs/assets`` (``NPM_SCENES``)."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"pmndrs-assets-{NPM_VERSION}.tgz"
    if not tarball.exists():
        fetch_photos.run(["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}"], cwd=cache)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != NPM_SHA256:
        raise RuntimeError(f"{tarball}: sha256 {digest}, expected {NPM_SHA256}")
    rows = []
    with tarfile.open(tarball) as tar:
        read = lambda member: tar.extractfile(f"package/{member}").read().decode()  # noqa: E731
        require(read("LICENSE"), "CC0 1.0 Universal", f"{NPM_PACKAGE}/LICENSE")
        require(read("package.json"), '"license": "CC0-1.0"', f"{NPM_PACKAGE}/package.json")
        require(read("README.md"), "A selection of [Polyhaven]", f"{NPM_PACKAGE}/README.md")
        for scene in NPM_SCENES:
            member = f"hdri/{scene}.exr.js"
            module = read(member)
            data = base64.b64decode(module.split("base64,", 1)[1].rsplit("'", 1)[0])
            name = f"pmndrs-assets__{scene}"
            radiance = prepare(fill_negative(read_exr(data, clip=False)), long_side, True)
            rows.append(
                save_scene(
                    name,
                    data,
                    radiance,
                    out,
                    source=f"npm:{NPM_PACKAGE}",
                    source_version=NPM_VERSION,
                    original_path=f"package/{member}",
                    licence="CC0-1.0",
                    licence_evidence="LICENSE; package.json; README.md (Poly Haven HDRIs)",
                    author_or_copyright="Poly Haven (HDRIs); packed by Antoine Bernier",
                    kind="panorama horizon band, radiance, linear Rec.709 (EV 0 = well exposed)",
                )
            )
    return rows


def exif_pairs(git_dir: Path, out: Path, long_side: int) -> list[dict[str, str]]:
    """The camera-HDR-off/on pairs as 8-bit PNGs ``<camera>__input.png``/``__target.png``."""
    commit = git_head(git_dir)
    readme = git_show(git_dir, "README.rst").decode()
    require(readme, "Attribution-ShareAlike 4.0 International", f"{EXIF_REPO}/README.rst")
    contributor = git_show(git_dir, "jpg/hdr/README").decode()
    require(contributor, "Contributed by", f"{EXIF_REPO}/jpg/hdr/README")
    rows = []
    for camera in EXIF_PAIRS:
        for role, flag in (("input", "NO"), ("target", "YES")):
            path = f"jpg/hdr/{camera}_hdr_{flag}.jpg"
            data = git_show(git_dir, path)
            with tempfile.NamedTemporaryFile(suffix=".jpg") as tmp:
                tmp.write(data)
                tmp.flush()
                image = ImageOps.exif_transpose(Image.open(tmp.name)).convert("RGB")
                image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
            dest = out / f"exif-samples__{camera}__{role}.png"
            image.save(dest)
            rows.append(
                {
                    "file": dest.name,
                    "source": f"github:{EXIF_REPO}",
                    "source_version": commit,
                    "original_path": path,
                    "licence": "CC-BY-SA-4.0",
                    "licence_evidence": "README.rst (user-contributed images); jpg/hdr/README",
                    "author_or_copyright": "Jesus Cea (contributor)",
                    "sha256_of_source": hashlib.sha256(data).hexdigest(),
                    "sha256_of_saved_file": hashlib.sha256(dest.read_bytes()).hexdigest(),
                    "split": "real-eval",
                    "kind": f"real photo, camera HDR mode {'off' if flag == 'NO' else 'on'}",
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openexr-images", type=Path, required=True, help="bare git dir")
    parser.add_argument("--exif-samples", type=Path, required=True, help="bare git dir")
    parser.add_argument("--out", type=Path, default=repo / "data" / "hdr")
    parser.add_argument("--pairs-out", type=Path, default=repo / "data" / "real_pairs")
    parser.add_argument("--cache", type=Path, default=repo / "data" / "cache" / "debs")
    parser.add_argument("--npm-cache", type=Path, default=repo / "data" / "cache" / "npm")
    parser.add_argument("--csv", type=Path, default=repo / "docs" / "hdr_scenes.csv")
    parser.add_argument("--long-side", type=int, default=1024)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.pairs_out.mkdir(parents=True, exist_ok=True)

    rows = openexr_scenes(args.openexr_images, args.out, args.long_side)
    rows += package_scenes(args.cache.resolve(), args.out, args.long_side)
    rows += npm_scenes(args.npm_cache.resolve(), args.out, args.long_side)
    rows += exif_pairs(args.exif_samples, args.pairs_out, args.long_side)
    with args.csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    scenes = [r for r in rows if r["file"].endswith(".npy")]
    val = sum(r["split"] == "val" for r in scenes)
    test = sum(r["split"] == "test" for r in scenes)
    print(f"{len(scenes)} scenes ({val} validation, {test} test) in {args.out}")
    print(f"record in {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
