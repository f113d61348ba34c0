"""Time our exact mode against the authors' network on the same image and weights.

The authors' repository (https://github.com/kdhRick2222/Exposure-slot) has no licence, so
none of its code is here: get it yourself and pass its folder::

    git clone https://github.com/kdhRick2222/Exposure-slot /tmp/authors
    pip install einops          # their network imports it
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/vs_authors.py /tmp/authors

Only ``network_level2.py`` (``network_level3.py`` for level-3 weights) is needed from it.
Their files also import torchvision and their ``config`` package at the top without using
them at inference; where those are missing, empty stand-ins are put in their place.

Both sides run the authors' test procedure on a ``--size`` square photo (scikit-image's
astronaut, upscaled): reflect-pad to a multiple of 4, forward, crop, clip to [0, 1]. Each
side runs in its own subprocess, rounds alternate between them, and the fastest round of
each counts; the peak RSS is the subprocess's whole life (Python, torch, weights, image).
Prints CPU and wall seconds, peak RSS, the speed-up and the largest output difference.
Takes about 2 minutes at 1024×1024 with 3 rounds on one core.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from highres import peak_rss
from machine import describe

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = ROOT / "tests" / "data" / "level2_seed0.pth"


def photo(size: int) -> np.ndarray:
    """A real photo as float32 ``size × size × 3`` RGB in [0, 1]."""
    from skimage import data

    rgb = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_CUBIC)
    return (rgb / 255.0).astype(np.float32)


def _stand_in(name: str, **attributes: object) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module


def load_authors(folder: Path, weights: Path) -> torch.nn.Module:
    """The authors' ``Slot_model`` from ``folder`` with ``weights`` loaded, in eval mode."""
    state = torch.load(weights, map_location="cpu")["model"]
    level = 3 if any("sub_slot_attention.sub_slot_attention" in key for key in state) else 2
    sys.path.insert(0, str(folder))
    try:
        importlib.import_module("torchvision.utils")
    except ImportError:
        _stand_in("torchvision")
        _stand_in("torchvision.utils", save_image=None)
        _stand_in("torchvision.transforms")
        _stand_in("torchvision.transforms.functional", pil_to_tensor=None)
    try:
        importlib.import_module("config.basic")
    except ImportError:
        _stand_in("config")
        _stand_in("config.basic", ConfigBasic=None)
    network = importlib.import_module(f"network_level{level}")
    model = network.Slot_model(types.SimpleNamespace(device="cpu"))
    model.load_state_dict(state)
    return model.eval()


def authors_correct(model: torch.nn.Module, img: np.ndarray) -> np.ndarray:
    """The authors' test procedure (their test.py) on one ``H×W×3`` float image."""
    h, w = img.shape[:2]
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    x = F.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect")
    with torch.no_grad():
        out, _, _ = model(x, x, inference=True)
    return out[0, :, :h, :w].clamp(0, 1).permute(1, 2, 0).numpy()


def worker(side: str, authors: Path, weights: Path, size: int, output: Path) -> dict:
    """Warm up on a small crop, then time one correction; save the output."""
    img = photo(size)
    if side == "authors":
        model = load_authors(authors, weights)
        run = lambda image: authors_correct(model, image)  # noqa: E731
    else:
        from exposure_slot import ExposureCorrector

        corrector = ExposureCorrector(weights, device="cpu")
        run = lambda image: corrector(image, mode="exact")  # noqa: E731
    run(img[:256, :256])
    cpu, wall = time.process_time(), time.perf_counter()
    out = run(img)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    np.save(output, out)
    peak = peak_rss()
    return {"cpu_s": cpu, "wall_s": wall, "peak_rss": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("authors", type=Path, help="folder with the authors' network_level2.py")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=["authors", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.authors, args.weights, args.size, args.output)
        print(json.dumps(result))
        return 0
    if not (args.authors / "network_level2.py").is_file():
        parser.error(f"{args.authors} has no network_level2.py: see this script's docstring")

    runs: dict[str, list[dict]] = {"authors": [], "ours": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for side in ("authors", "ours") if i % 2 == 0 else ("ours", "authors"):
                out = Path(tmp) / f"{side}.npy"
                cmd = [sys.executable, __file__, str(args.authors), "--worker", side]
                cmd += ["--weights", str(args.weights), "--size", str(args.size)]
                cmd += ["--output", str(out)]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode:
                    sys.exit(f"{side} failed:\n{done.stderr}")
                runs[side].append(json.loads(done.stdout.splitlines()[-1]))
                print(f"round {i + 1} {side:7s} cpu {runs[side][-1]['cpu_s']:6.2f} s", flush=True)
        diff = np.abs(np.load(Path(tmp) / "authors.npy") - np.load(Path(tmp) / "ours.npy")).max()

    best = {
        side: {k: min(r[k] for r in rs) for k in ("cpu_s", "wall_s")} for side, rs in runs.items()
    }
    peak = {side: max(r["peak_rss"] for r in rs) for side, rs in runs.items()}
    print(f"\n{describe()}")
    print(f"{args.size}×{args.size}, weights {args.weights.name}, best of {args.rounds} rounds")
    print("| code | CPU s | wall s | peak RSS |")
    print("|---|---:|---:|---:|")
    for side, label in (("authors", "authors' network"), ("ours", "exposure-slot, mode='exact'")):
        cpu, wall = best[side]["cpu_s"], best[side]["wall_s"]
        print(f"| {label} | {cpu:.2f} | {wall:.2f} | {peak[side] / 2**30:.2f} GiB |")
    speedup = best["authors"]["cpu_s"] / best["ours"]["cpu_s"]
    print(f"\nspeed-up (CPU time): {speedup:.2f}×; max |ours - authors| = {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
