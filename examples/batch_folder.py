"""Correct every photo in a folder, keeping sub-folders, metadata and going past bad files.

    python examples/batch_folder.py [IN_DIR] [OUT_DIR]

Without IN_DIR, a folder of scikit-image sample photos (one of them broken on purpose) is
made. The command line does the same with a progress bar and atomic writes:
``exposure-slot correct IN_DIR -o OUT_DIR --recursive``.
"""

import sys
import tempfile
from pathlib import Path

from exposure_slot import ExposureCorrector, ExposureSlotError
from exposure_slot.imageio import read_image, write_image

EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"}


def sample_folder(folder: Path) -> Path:
    """A few dark and bright scikit-image photos, in sub-folders, and one broken file."""
    from skimage import data

    for sub in ("dark", "bright"):
        (folder / "in" / sub).mkdir(parents=True, exist_ok=True)
    write_image(folder / "in" / "dark" / "astronaut.jpg", (data.astronaut() / 255.0) ** 2.5)
    write_image(folder / "in" / "bright" / "coffee.png", (data.coffee() / 255.0) ** 0.4)
    (folder / "in" / "broken.jpg").write_bytes(b"not really a JPEG")
    return folder / "in"


out_dir = (
    Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="exposure-slot-"))
)
if len(sys.argv) > 1:
    in_dir = Path(sys.argv[1])
else:
    in_dir = sample_folder(out_dir)
    out_dir = out_dir / "out"

corrector = ExposureCorrector()  # load once, use for every photo
failed = 0
for source in sorted(p for p in in_dir.rglob("*") if p.suffix.lower() in EXTENSIONS):
    target = out_dir / source.relative_to(in_dir)
    try:
        image = read_image(source)  # a broken file raises ImageReadError, naming it
        target.parent.mkdir(parents=True, exist_ok=True)
        # write_image keeps format (from the extension), bit depth, alpha, EXIF and ICC.
        write_image(target, corrector(image.rgb), like=image)
    except ExposureSlotError as error:  # every library error derives from this class
        failed += 1
        print(f"skipped: {error}", file=sys.stderr)
        continue
    print(f"{source} -> {target}")
print(f"done, {failed} failed")
