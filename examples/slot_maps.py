"""Look at what the slots found: which pixels the network grouped together, per level.

    python examples/slot_maps.py [PHOTO] [OUT_DIR]

Without PHOTO, the sample photo that ships with the package is used. Writes a montage
(input | corrected | main slots | sub slots) and the sub-slot overlay to OUT_DIR (default:
a new temporary folder). The command line makes a similar picture:
``exposure-slot slots PHOTO -o slots.png``.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from exposure_slot import ExposureCorrector
from exposure_slot.files import read_image
from exposure_slot.samples import sample_path
from exposure_slot.visualize import correction_montage, fit_long_side

photo = sys.argv[1] if len(sys.argv) > 1 else sample_path()
out_dir = (
    Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="exposure-slot-"))
)
out_dir.mkdir(parents=True, exist_ok=True)

rgb = fit_long_side(read_image(photo).rgb, 512)  # slot maps are for looking at: small is enough
corrector = ExposureCorrector()
maps = corrector.slot_maps(rgb)

# maps.levels[i] holds K×H×W soft assignments (they sum to 1 over the K slots of level i);
# level 0 is the main slots, level 1 the sub-slots inside them.
for level, assignments in enumerate(maps.levels):
    share = np.bincount(maps.labels(level).ravel(), minlength=len(assignments)) / rgb[..., 0].size
    print(f"level {level}: {len(assignments)} slots, pixel share", np.round(share, 2))

maps.overlay(rgb, level=1).save(out_dir / "sub_slots.png")
montage = correction_montage(rgb, corrector(rgb), maps.levels, height=256)
montage.save(out_dir / "montage.jpg", quality=90)
print(f"wrote {out_dir / 'montage.jpg'} and {out_dir / 'sub_slots.png'}")
