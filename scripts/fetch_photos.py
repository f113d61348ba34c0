"""Fetch licence-clean photographs for training and write their licence record.

Run as ``python scripts/fetch_photos.py --out data/photos``. The photos come from Debian
packages (fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``) and from the
sample images that scikit-image and scikit-learn install. Only photographs are kept (no
renders, drawings, gradients or abstract art: each file below was chosen by eye), and only
under free licences (CC0, public domain, CC-BY, CC-BY-SA, BSD, GPL/LGPL, GFDL), never NC/ND.
Images of unclear provenance (e.g. OpenCV's sample data) are left out.

Every photo is downscaled to a short side of at most 768 px (``--short-side``; the record's
sha256 values are for 768) and saved as a JPEG (quality 95) named ``<source>__<name>.jpg``.
The licence of each file is read from its package (the DEP-5 ``copyright`` file, a
wallpaper's ``metadata.json``, a puzzle's ``.desktop`` file, or the docstring/README of the
Python package) and written to ``docs/training_photos.csv`` with its sha256 and a
deterministic train/val split. The script is idempotent: downloaded packages are cached
under ``--cache`` and re-running rewrites identical files and the identical record.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import fnmatch
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

JPEG_QUALITY = 95
VAL_PERCENT = 15
CSV_COLUMNS = [
    "file",
    "source_package",
    "package_version",
    "original_path",
    "licence",
    "author_or_copyright",
    "sha256_of_saved_file",
    "split",
]

# Photographs chosen by eye from each package; everything else in them is a render or drawing.
LOMIRI_1604 = [
    "usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg",
    "usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
    "usr/share/backgrounds/Dragonfly_by_Bolly.jpg",
    "usr/share/backgrounds/free_by_Peter_Nerlich.jpg",
    "usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg",
    "usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg",
    "usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg",
    "usr/share/backgrounds/Picture_0B_by_freespace.jpg",
    "usr/share/backgrounds/Picture_1A_by_freespace.jpg",
    "usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg",
    "usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg",
    "usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg",
]
LOMIRI_2004 = ["usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"]
MATE = [
    f"usr/share/backgrounds/mate/nature/{n}.jpg"
    for n in (
        "Aqua",
        "Blinds",
        "Dune",
        "Garden",
        "GreenMeadow",
        "LadyBird",
        "RainDrops",
        "Storm",
        "TwoWings",
        "Wood",
        "YellowFlower",
    )
]
PLASMA = [
    f"usr/share/wallpapers/{n}"
    for n in (
        "BytheWater",
        "ColdRipple",
        "ColorfulCups",
        "DarkestHour",
        "EveningGlow",
        "FallenLeaf",
        "Grey",
        "Kite",
        "OneStandsOut",
        "Path",
        "summer_1am",
    )
]
PALAPELI = [
    f"usr/share/palapeli/collection/{n}.jpg"
    for n in (
        "castle-maintenon",
        "cincinnati-bridge",
        "citrus-fruits",
        "european-honey-bee",
        "panther-chameleon-female",
    )
]
ENLIGHTENMENT = [
    f"usr/share/enlightenment/data/backgrounds/{n}.edj"
    for n in (
        "Bamboo",
        "Foggy-Trees",
        "God-Rays",
        "Green-Maple",
        "Lichen-Branches",
        "Mountain",
        "Peaks",
        "Red-Maple",
        "Sea-of-Lanterns",
        "Snow-Trees",
        "Spruce-Needles",
        "Sunset-Clouds",
        "White-Flower",
        "Yellow-Flower",
    )
]

# Consumer snapshots (portraits, indoor flash, bar, pool hall, pets, landscapes).
KPHOTOALBUM = [
    f"usr/share/kphotoalbum/demo/{n}.jpg"
    for n in (
        "anne_helene",
        "bar55",
        "bar55_2",
        "blackie",
        "cold_water",
        "donna",
        "donna_2",
        "grand_canyon_1",
        "grand_canyon_2",
        "grand_canyon_3",
        "jesper",
        "jesper_2",
        "new_wave_1",
        "new_wave_2",
        "pool",
        "pool_2",
        "qt-logo",
        "skagen",
        "skagen_2",
        "snow",
        "spiff",
        "spiff_2",
        "sunset",
        "wayne",
    )
]
# These copyright files are not DEP-5; they put the whole package under GPL-2+.
WHOLE_PACKAGE_LICENCES = {
    "kphotoalbum": (
        "GPL-2+ (package copyright; the demo photos have no separate statement)",
        "Jesper K. Pedersen and the KPhotoAlbum authors",
    ),
    "digikam-data": (
        "GPL-2+ (package copyright; the photo has no separate statement)",
        "Gilles Caulier and the digiKam authors",
    ),
}
LXQT = {
    "usr/share/lxqt/wallpapers/after-the-rain.jpg": "stefonarch",
    "usr/share/lxqt/wallpapers/appleflower.png": "stefonarch",
    "usr/share/lxqt/wallpapers/beam.png": "stefonarch",
    "usr/share/lxqt/wallpapers/Butterfly-Kenneth-Wimer.jpg": "Kenneth Wimer",
    "usr/share/lxqt/wallpapers/butterfly.png": "stefonarch",
    "usr/share/lxqt/wallpapers/cloud.png": "LXQt Project Team",
    "usr/share/lxqt/wallpapers/drop.png": "stefonarch",
    "usr/share/lxqt/wallpapers/flowers.png": "stefonarch",
    "usr/share/lxqt/wallpapers/fog.jpg": "stefonarch",
    "usr/share/lxqt/wallpapers/this-is-not-windows.jpg": "stefonarch",
    "usr/share/lxqt/wallpapers/Valendas.png": "LXQt Project Team",
}

# JPEG XL test photographs: three CC0 photos from wesaturate.com and libjxl's flower.
LIBJXL = [
    "usr/share/libjxl-testdata/external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png",
    "usr/share/libjxl-testdata/external/wesaturate/500px/tmshre_riaphotographs_srgb8.png",
    "usr/share/libjxl-testdata/external/wesaturate/500px/u76c0g_bliznaca_srgb8.png",
    "usr/share/libjxl-testdata/jxl/flower/flower.png",
]

# Found after the default weights were trained, so validation-only (never trained on): a
# lake under a clouded sky (phone photo), a beach under a bright sky, an animal close-up
# and a black-and-white close-up.
DIGIKAM = ["usr/share/digikam/about/images/body-background.jpg"]
SDDM_MALDIVES = ["usr/share/sddm/themes/maldives/background.jpg"]
SCRIBUS = ["usr/share/scribus/templates/nl2/flowers.jpg"]
SCIPY_FACE = "usr/lib/python3/dist-packages/scipy/misc/face.dat"
SCIPY_FACE_NOTE = "; docstring: raccoon-procyon-lotor.jpg from public-domain-image.com"

# scikit-image colour photographs and the licence stated in skimage/data/_fetchers.py.
SKIMAGE = {
    "astronaut.png": ("public-domain", "NASA (no known copyright restrictions)"),
    "camera.png": ("CC0-1.0", "Lav Varshney (greyscale photo, saved as RGB)"),
    "chelsea.png": ("CC0-1.0", "Stefan van der Walt"),
    "coffee.png": ("CC0-1.0", "Rachel Michetti"),
    "rocket.jpg": ("public-domain", "SpaceX"),
}
# scikit-learn sample images and the licence in sklearn/datasets/images/README.txt.
SKLEARN = {
    "china.jpg": ("CC-BY-2.0", "danielbuechele (Flickr), retrieved by Robert Layton"),
    "flower.jpg": ("CC-BY-2.0", "vultilion (Flickr), retrieved by Robert Layton"),
}


@dataclass
class Record:
    """One saved photo and where it came from."""

    file: str
    source_package: str
    package_version: str
    original_path: str
    licence: str
    author_or_copyright: str
    sha256_of_saved_file: str = ""
    split: str = ""


def run(cmd: list[str], cwd: Path | None = None) -> str:
    """Run a command and return its stdout, failing loudly with its stderr."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc.stdout


def download_package(package: str, cache: Path) -> Path:
    """Return the cached .deb of a package, downloading it with apt-get if needed."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    try:
        run(["apt-get", "download", package], cwd=cache)
    except RuntimeError:
        run(["apt-get", "update"])
        run(["apt-get", "download", package], cwd=cache)
    return sorted(cache.glob(f"{package}_*.deb"))[-1]


def parse_dep5(text: str) -> list[tuple[list[str], str, str]]:
    """Parse a DEP-5 copyright file into (file patterns, copyright, licence) stanzas."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key].append(line.strip())
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = [value.strip()]
        if "Files" in fields:
            patterns = " ".join(fields["Files"]).split()
            holders = [v for v in fields.get("Copyright", []) if v]
            copyright_ = "; ".join(holders[:3]) + ("; and others" if len(holders) > 3 else "")
            licence = fields.get("License", [""])[0]
            stanzas.append((patterns, copyright_, licence))
    return stanzas


def dep5_licence(stanzas: list[tuple[list[str], str, str]], path: str) -> tuple[str, str]:
    """Licence and copyright for an installed path: the last matching stanza wins (DEP-5)."""
    result = ("", "")
    name = Path(path).name
    for patterns, copyright_, licence in stanzas:
        for pattern in patterns:
            if pattern.startswith("debian/"):
                continue
            by_suffix = fnmatch.fnmatch(path, "*" + pattern)
            base = Path(pattern).name
            by_name = "/" in pattern and "*" not in base and fnmatch.fnmatch(name, base)
            if by_suffix or by_name:
                result = (licence, copyright_)
    if not result[0]:
        raise RuntimeError(f"no licence stanza matches {path}")
    return result


def largest_embedded_jpeg(data: bytes) -> Image.Image:
    """The largest JPEG embedded in a binary file (Enlightenment .edj backgrounds).

    JPEGs are found by their start marker FF D8 FF and cut at the first end marker FF D9
    after which Pillow decodes the whole image.
    """
    best: Image.Image | None = None
    start = data.find(b"\xff\xd8\xff")
    while start >= 0:
        end = data.find(b"\xff\xd9", start)
        image = None
        while end >= 0 and image is None:
            try:
                image = Image.open(io.BytesIO(data[start : end + 2]))
                image.load()
            except OSError:
                image = None
                end = data.find(b"\xff\xd9", end + 2)
        if image is None:
            break
        if best is None or image.width * image.height > best.width * best.height:
            best = image
        start = data.find(b"\xff\xd8\xff", end + 2)
    if best is None:
        raise RuntimeError("no decodable JPEG found")
    return best


def largest_image(folder: Path) -> Path:
    """The image with most pixels in a Plasma wallpaper's contents/images folder."""
    candidates = [p for p in (folder / "contents" / "images").iterdir() if p.is_file()]
    return max(candidates, key=lambda p: np.prod(Image.open(p).size))


def save_photo(image: Image.Image, dest: Path, short_side: int) -> str:
    """Downscale to ``short_side``, save as JPEG and return the file's sha256."""
    image = ImageOps.exif_transpose(image).convert("RGB")
    scale = short_side / min(image.size)
    if scale < 1:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    data = buffer.getvalue()
    if not dest.exists() or dest.read_bytes() != data:
        dest.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def split_of(file_name: str) -> str:
    """Deterministic split: about VAL_PERCENT % of file names (by hash) go to val, and so does
    every photo added after the default weights were trained (ADDED_FOR_VALIDATION)."""
    if file_name in ADDED_FOR_VALIDATION:
        return "val"
    bucket = int(hashlib.sha256(file_name.encode()).hexdigest()[:8], 16) % 100
    return "val" if bucket < VAL_PERCENT else "train"


def stem_name(package: str, path: str) -> str:
    """Saved file name ``<source>__<name>.jpg`` for a member of a package."""
    name = Path(path).stem if not path.endswith("/") else Path(path).name
    return f"{package}__{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.jpg"


def fetch_debian(
    package: str, members: list[str], out: Path, cache: Path, short_side: int
) -> list[Record]:
    """Fetch a Debian package and save its selected photographs."""
    deb = download_package(package, cache)
    version = run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run(["dpkg-deb", "-x", str(deb), str(root)])
        doc = root / "usr" / "share" / "doc" / package / "copyright"
        stanzas = parse_dep5(doc.read_text(encoding="utf-8", errors="replace"))
        for member in members:
            if package in WHOLE_PACKAGE_LICENCES:
                licence, author = WHOLE_PACKAGE_LICENCES[package]
            else:
                licence, author = dep5_licence(stanzas, member)
                if author.lower() == "none":
                    author = "none stated (see the README.md next to the file)"
            source = root / member
            original = member
            if member.endswith(".edj"):
                image = largest_embedded_jpeg(source.read_bytes())
                original = f"{member} (largest embedded JPEG, {image.width}x{image.height})"
            elif package == "plasma-workspace-wallpapers":
                meta = json.loads((source / "metadata.json").read_text(encoding="utf-8"))
                plugin = meta["KPlugin"]
                licence = f"{plugin['License']} (metadata.json; package copyright: {licence})"
                author = ", ".join(a["Name"] for a in plugin["Authors"])
                image_path = largest_image(source)
                original = str(image_path.relative_to(root))
                image = Image.open(image_path)
            elif package == "palapeli-data":
                desktop = source.with_suffix(".desktop").read_text(encoding="utf-8")
                info = dict(re.findall(r"^X-KDE-PluginInfo-(\w+)=(.*)$", desktop, re.M))
                licence = f"{info['License']} (per .desktop; package copyright: {licence})"
                author = f"{info['Author']} ({info['Website']})"
                image = Image.open(source)
            elif package == "lxqt-themes":
                notice = (source.parent / "License").read_text(encoding="utf-8")
                stated = re.search(r"creativecommons.org/licenses/by-sa/3.0", notice)
                if not stated:
                    raise RuntimeError(f"unexpected licence notice next to {member}")
                licence = f"CC-BY-SA-3.0 (wallpapers/License; package copyright: {licence})"
                author = f"{LXQT[member]} (LXQt Project Team)"
                image = Image.open(source)
            elif member == SCIPY_FACE:
                pixels = np.frombuffer(bz2.decompress(source.read_bytes()), np.uint8)
                image = Image.fromarray(pixels.reshape(768, 1024, 3))
                licence += SCIPY_FACE_NOTE
            else:
                image = Image.open(source)
            name = stem_name(package, member.rstrip("/"))
            sha = save_photo(image, out / name, short_side)
            records.append(Record(name, package, version, original, licence, author, sha))
    return records


def fetch_python_samples(out: Path, short_side: int) -> list[Record]:
    """Save the colour sample photographs that scikit-image and scikit-learn install."""
    import skimage
    import skimage.data
    import sklearn
    import sklearn.datasets

    records = []
    groups = [
        ("scikit-image", skimage.__version__, Path(skimage.data.__file__).parent, SKIMAGE),
        (
            "scikit-learn",
            sklearn.__version__,
            Path(sklearn.datasets.__file__).parent / "images",
            SKLEARN,
        ),
    ]
    for package, version, folder, table in groups:
        for file_name, (licence, author) in table.items():
            name = f"{package}__{Path(file_name).stem}.jpg"
            sha = save_photo(Image.open(folder / file_name), out / name, short_side)
            original = str((folder / file_name).relative_to(folder.parents[1]))
            records.append(Record(name, package, version, original, licence, author, sha))
    return records


DEBIAN_SOURCES = {
    "lomiri-wallpapers-16.04": LOMIRI_1604,
    "lomiri-wallpapers-20.04": LOMIRI_2004,
    "mate-backgrounds": MATE,
    "plasma-workspace-wallpapers": PLASMA,
    "palapeli-data": PALAPELI,
    "enlightenment-data": ENLIGHTENMENT,
    "kphotoalbum": KPHOTOALBUM,
    "lxqt-themes": list(LXQT),
    "libjxl-testdata": LIBJXL,
}
VALIDATION_ONLY_SOURCES = {
    "digikam-data": DIGIKAM,
    "sddm-theme-maldives": SDDM_MALDIVES,
    "scribus-data": SCRIBUS,
    "python3-scipy": [SCIPY_FACE],
}
DEBIAN_SOURCES.update(VALIDATION_ONLY_SOURCES)
ADDED_FOR_VALIDATION = {
    stem_name(package, member)
    for package, members in VALIDATION_ONLY_SOURCES.items()
    for member in members
}


def write_csv(records: list[Record], path: Path) -> None:
    """Write the licence record sorted by file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in sorted(records, key=lambda r: r.file):
            writer.writerow(vars(record))


def main(argv: list[str] | None = None) -> int:
    """Fetch every source, save the photos and write the licence record."""
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=repo / "data" / "photos")
    parser.add_argument("--cache", type=Path, default=repo / "data" / "cache" / "debs")
    parser.add_argument(
        "--csv", type=Path, help="licence record (default: docs/training_photos.csv)"
    )
    parser.add_argument(
        "--short-side",
        type=int,
        default=768,
        help="downscale to this short side (default 768: the size docs/training_photos.csv "
        "records; larger sizes keep the native texture that --scale-consistency trains on; "
        "write their record elsewhere with --csv)",
    )
    args = parser.parse_args(argv)
    if args.csv is None:
        if args.short_side != 768:
            parser.error("--short-side other than 768 needs --csv: the record in docs is for 768")
        args.csv = repo / "docs" / "training_photos.csv"
    args.out.mkdir(parents=True, exist_ok=True)

    records = fetch_python_samples(args.out, args.short_side)
    for package, members in DEBIAN_SOURCES.items():
        print(f"{package}: {len(members)} photos", file=sys.stderr)
        records += fetch_debian(package, members, args.out, args.cache.resolve(), args.short_side)
    for record in records:
        record.split = split_of(record.file)
    write_csv(records, args.csv)

    print(f"{len(records)} photos in {args.out}, record in {args.csv}")
    for label, key in (("source", "source_package"), ("licence", "licence"), ("split", "split")):
        counts = Counter(getattr(r, key) for r in records)
        print(f"per {label}:")
        for value, count in sorted(counts.items()):
            print(f"  {count:4d}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
