"""Quick start: correct one badly exposed photo, keeping its metadata.

    python examples/quickstart.py [PHOTO] [OUT_DIR]

Without PHOTO, the sample photo that ships with the package is used (a dim bar, as shot).
Results go to OUT_DIR (default: a new temporary folder); PHOTO itself is never changed.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from exposure_slot import ExposureCorrector
from exposure_slot.files import read_image, write_image
from exposure_slot.samples import sample_path

photo = Path(sys.argv[1]) if len(sys.argv) > 1 else sample_path()
out_dir = (
    Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="exposure-slot-"))
)
out_dir.mkdir(parents=True, exist_ok=True)

# The default weights ship with the package: no download. The device is picked for you
# (CUDA, then Apple MPS, then CPU); pass device="cpu" to choose.
corrector = ExposureCorrector()
print(corrector)

# read_image gives float32 RGB in [0, 1], upright, plus the file's metadata (EXIF, ICC,
# alpha, bit depth) so that write_image can keep them in the output.
image = read_image(photo)
fixed = corrector(image.rgb)  # same shape and dtype back; large photos are handled too
target = out_dir / f"{photo.stem}_corrected{photo.suffix}"
write_image(target, fixed, like=image)

# The corrector also takes PIL images, numpy arrays of any usual dtype, and torch tensors,
# and gives back the same type: corrector(Image.open(photo)) returns a PIL image.
print(f"mean brightness {np.mean(image.rgb):.3f} -> {np.mean(fixed):.3f}")
print(f"wrote {target}")
