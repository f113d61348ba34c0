"""Use the corrector inside numpy and torch pipelines: arrays in, arrays out, batches on GPU.

    python examples/pipeline_numpy_torch.py [PHOTO ...] [--out OUT_DIR]

Without PHOTO, scikit-image sample photos are used. Runs on the GPU when there is one,
else on the CPU. Writes the corrected batch to OUT_DIR (default: a new temporary folder).
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from exposure_slot import ExposureCorrector
from exposure_slot.imageio import read_image

args = sys.argv[1:]
out_dir = Path(tempfile.mkdtemp(prefix="exposure-slot-"))
if "--out" in args:
    out_dir = Path(args.pop(args.index("--out") + 1))
    args.remove("--out")
out_dir.mkdir(parents=True, exist_ok=True)
if args:
    photos = [np.round(read_image(path).rgb * 255).astype(np.uint8) for path in args]
else:
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea()]

device = "cuda" if torch.cuda.is_available() else "cpu"
corrector = ExposureCorrector(device=device)  # float16 on CUDA, float32 on CPU

# numpy: uint8 H×W×3 in, uint8 H×W×3 out (uint16 and float arrays keep their dtype too).
darker = (photos[0] * 0.35).astype(np.uint8)
fixed = corrector(darker)
print(f"numpy: {darker.dtype} {darker.shape} mean {darker.mean():.1f} -> {fixed.mean():.1f}")

# torch: a B×3×H×W float batch in [0, 1], already on the device, stays there.
size = 256
batch = torch.stack(
    [torch.from_numpy(np.array(Image.fromarray(p).resize((size, size)))) for p in photos]
)
batch = (batch.permute(0, 3, 1, 2).float() / 255).to(device) ** 2  # darker, as a test
with torch.inference_mode():
    out = corrector(batch)
print(f"torch: {tuple(batch.shape)} on {batch.device} -> {tuple(out.shape)} on {out.device}")

# A list of images of different sizes is corrected one by one and comes back as a list.
listed = corrector([darker, photos[-1]])
print("list:", [a.shape for a in listed])

for i, image in enumerate(out.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu()):
    Image.fromarray(image.numpy()).save(out_dir / f"batch_{i}.png")
print(f"wrote {len(out)} pictures to {out_dir}")
