"""Use the corrector inside numpy and torch pipelines: arrays in, arrays out, batches on GPU.

    python examples/pipeline_numpy_torch.py [PHOTO ...] [--out OUT_DIR]

Without PHOTO, the sample photo that ships with the package is used. Your photos are read,
never changed: the results go to OUT_DIR (default: a new temporary folder). Runs on the GPU
when there is one, else on the CPU.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from exposure_slot import ExposureCorrector
from exposure_slot.files import read_image
from exposure_slot.samples import sample_path

args = sys.argv[1:]
out_dir = Path(tempfile.mkdtemp(prefix="exposure-slot-"))
if "--out" in args:
    out_dir = Path(args.pop(args.index("--out") + 1))
    args.remove("--out")
out_dir.mkdir(parents=True, exist_ok=True)
paths = [Path(p) for p in args] or [sample_path()]
photos = [np.round(read_image(path).rgb * 255).astype(np.uint8) for path in paths]

device = "cuda" if torch.cuda.is_available() else "cpu"
corrector = ExposureCorrector(device=device)  # float16 on CUDA, float32 on CPU

# numpy: uint8 H×W×3 in, uint8 H×W×3 out (uint16 and float arrays keep their dtype too).
fixed = corrector(photos[0])
print(f"numpy: {fixed.dtype} {fixed.shape} mean {photos[0].mean():.1f} -> {fixed.mean():.1f}")

# torch: a B×3×H×W float batch in [0, 1], already on the device, stays there. A batch has
# one size, so each photo is cropped to the centre of the smallest common size (not scaled).
height = min(p.shape[0] for p in photos)
width = min(p.shape[1] for p in photos)


def centre(photo: np.ndarray) -> np.ndarray:
    top, left = (photo.shape[0] - height) // 2, (photo.shape[1] - width) // 2
    return photo[top : top + height, left : left + width]


batch = torch.stack([torch.from_numpy(centre(p)) for p in photos]).permute(0, 3, 1, 2)
batch = (batch.float() / 255).to(device)
with torch.inference_mode():
    out = corrector(batch)
print(f"torch: {tuple(batch.shape)} on {batch.device} -> {tuple(out.shape)} on {out.device}")

# A list of images of different sizes is corrected one by one and comes back as a list.
listed = corrector([photos[0], photos[0][::2, ::2]])
print("list:", [a.shape for a in listed])

for path, image in zip(paths, out.mul(255).round().byte().permute(0, 2, 3, 1).cpu(), strict=True):
    Image.fromarray(image.numpy()).save(out_dir / f"{path.stem}_batch.png")
print(f"wrote {len(out)} pictures to {out_dir}")
