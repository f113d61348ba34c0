"""Correct every photo in a folder, keeping sub-folders, metadata and going past bad files.

    python examples/batch_folder.py [IN_DIR] [OUT_DIR]

Without IN_DIR, a small folder is made from the package's sample photo (with a sub-folder
and one broken file on purpose). The command line does the same with a progress bar and
atomic writes: ``exposure-slot correct IN_DIR -o OUT_DIR --recursive``.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from exposure_slot import ExposureCorrector, ExposureSlotError
from exposure_slot.files import read_image, write_image
from exposure_slot.samples import sample_path

EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"}


def sample_folder(folder: Path) -> Path:
    """The sample photo as a JPEG and, in a sub-folder, a 16-bit PNG; and one broken file."""
    (folder / "in" / "party").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample_path(), folder / "in" / "bar.jpg")
    wide = np.round(read_image(sample_path()).rgb * 65535).astype(np.uint16)
    write_image(folder / "in" / "party" / "bar_16bit.png", wide)  # uint16 -> a 16-bit PNG
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
