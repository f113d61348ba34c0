"""Speed and memory of the high-resolution modes, per image size, in one run.

Modes: ``whole`` (a plain whole-image pass of our own network, ``net(x)``; only where it
fits in half the available memory), ``exact`` (equal to the whole-image pass; tiled when
large), ``bounded`` (exact mode with ``max_memory`` set to ``--max-memory`` MiB: part of the
attention state is recomputed when it does not fit; only with that option), ``fast``
(network on a proxy, correction carried to full resolution) and ``auto`` (what
``ExposureCorrector()`` does by default). Every case runs in a fresh subprocess: one
correction of a uint8 photo through ``ExposureCorrector`` (numpy in, numpy out), after a
warm-up on a 256×256 crop. Reported per case: CPU seconds per megapixel and in all, wall
seconds, the peak RSS of the subprocess (its whole life: Python, torch, weights, photo), the
speed-up over the whole-image pass (its seconds per megapixel from this run at the largest
size where it ran: its cost is linear in the pixel count) and over exact mode, and for fast
and auto the PSNR against exact mode's output of the same photo. A second table compares
fast mode at several proxy sizes with exact mode on every photo at 12 MP.

Photos: ``--photos FILE ...``, each centre-cropped to the size's aspect ratio and resized
with OpenCV (area when shrinking, bicubic when enlarging). The first is timed at every
size; all are in the 12 MP table. Without ``--photos``: scikit-image's and scikit-learn's
sample photos, upscaled (they are small, and upscaled photos are smooth: that flatters the
fast mode). The README table was made from four photographs of 12-20 MP from Debian's
lomiri-wallpapers packages (in ``data/cache/debs`` after ``scripts/fetch_photos.py``)::

    for deb in data/cache/debs/lomiri-wallpapers-*.deb; do dpkg-deb -x "$deb" /tmp/lomiri; done
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/highres.py --photos \\
        /tmp/lomiri/usr/share/backgrounds/{Kleiber_by_Lukas_Baubkus,seeding_by_Clements_Engelhardt,Dragonfly_by_Bolly,sunset_by_Aitzol_Berasategi}.jpg

That takes about 20 minutes on one core (most of it exact mode: about 80 s at 12 MP and
200 s at 24 MP per photo).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from machine import describe

from exposure_slot.evaluation import psnr

SIZES = {1: (1152, 864), 12: (4000, 3000), 24: (6000, 4000)}
"""Width × height per nominal megapixel count (camera aspect ratios)."""

MODES = ("whole", "exact", "bounded", "fast", "auto")
WHOLE_BYTES_PER_PIXEL = 1.5e3
"""Peak memory of a whole-image float32 pass per input pixel (measured: 1.4 GB at 1 MP)."""

PROXIES = (640, 768, 1024)


def sample_photos() -> list[tuple[str, np.ndarray]]:
    """Real photos that come with the test dependencies (small: upscaled later)."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    return [
        ("skimage astronaut", data.astronaut()),
        ("skimage coffee", data.coffee()),
        ("sklearn china", load_sample_image("china.jpg")),
        ("sklearn flower", load_sample_image("flower.jpg")),
    ]


def read_photo(path: Path) -> np.ndarray:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop ``rgb`` to the aspect ratio of ``size`` (w, h), then resize to it."""
    w, h = size
    ih, iw = rgb.shape[:2]
    if iw * h > ih * w:
        cw = ih * w // h
        rgb = rgb[:, (iw - cw) // 2 : (iw - cw) // 2 + cw]
    else:
        ch = iw * h // w
        rgb = rgb[(ih - ch) // 2 : (ih - ch) // 2 + ch]
    shrink = rgb.shape[1] > w
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def run_case(
    mode: str,
    img: np.ndarray,
    weights: str,
    proxy: int | None,
    max_memory: int | None,
    dtype: str | None = None,
) -> tuple[np.ndarray, dict]:
    """One correction of ``img`` in ``mode``, timed after a warm-up."""
    from exposure_slot import ExposureCorrector, pixels
    from exposure_slot.highres.pipeline import pad_to_multiple

    corrector = ExposureCorrector(weights, device="cpu", dtype=dtype)

    def whole(image: np.ndarray) -> np.ndarray:
        batch, restore = pixels.to_batch(image)
        h, w = batch.shape[-2:]
        with torch.inference_mode():
            out = corrector.net(pad_to_multiple(batch)).image[..., :h, :w].clamp(0, 1)
        return restore(out)

    options = {"mode": mode, "proxy_size": proxy}
    if mode in ("whole", "bounded"):  # whole: planned as exact, run as a plain net(x)
        options = {"mode": "exact", "max_memory": max_memory if mode == "bounded" else None}

    def correct(image: np.ndarray) -> np.ndarray:
        if mode == "whole":
            return whole(image)
        return corrector(image, **options)

    correct(img[:256, :256])
    how = corrector.plan(img, **options)
    cpu, wall = time.process_time(), time.perf_counter()
    out = correct(img)
    info = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}
    info["peak_rss"] = peak_rss()
    info["plan"] = "plain net(x)" if mode == "whole" else str(how)
    return out, info


def peak_rss() -> int:
    """Peak resident memory of this process in bytes.

    ``VmHWM`` of the process's own memory map: ``ru_maxrss`` would also count the parent's
    peak, which Linux carries over into a child started by fork or vfork and exec.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def photos_of(args: argparse.Namespace) -> list[tuple[str, np.ndarray]]:
    if args.photos:
        return [(path.stem, read_photo(path)) for path in args.photos]
    return sample_photos()


class Runner:
    """Runs cases in fresh subprocesses; outputs stay in ``folder`` for comparisons."""

    def __init__(self, args: argparse.Namespace, folder: Path):
        self.args, self.folder = args, folder

    def __call__(self, mode: str, mp: int, photo: int, proxy: int = 0) -> dict:
        out = self.folder / f"{mode}-{mp}-{photo}-{proxy}.npy"
        cmd = [sys.executable, __file__, "--case", mode, str(mp), str(photo), str(proxy)]
        cmd += ["--output", str(out), "--weights", self.args.weights]
        cmd += ["--dtype", self.args.dtype] if self.args.dtype else []
        cmd += ["--max-memory", str(self.args.max_memory or 0)]
        cmd += ["--photos", *map(str, self.args.photos or [])]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{mode} at {mp} MP failed:\n{done.stderr}")
        result = json.loads(done.stdout.splitlines()[-1])
        result.update(mode=mode, mp=mp, output=out)
        peak = result["peak_rss"] / 2**30
        print(
            f"  {mode:5s} {mp:2d} MP photo {photo}: {result['cpu_s']:7.2f} s CPU, "
            f"{peak:.2f} GiB ({result['plan']})",
            flush=True,
        )
        return result


def size_table(args: argparse.Namespace, run: Runner) -> list[dict]:
    """Every mode at every size on the first photo."""
    from exposure_slot.highres import available_memory

    rows, exact_out = [], {}
    for mp in args.sizes:
        w, h = SIZES[mp]
        fits = WHOLE_BYTES_PER_PIXEL * w * h < 0.5 * available_memory(torch.device("cpu"))
        for mode in MODES:
            if (mode == "whole" and not fits) or (mode == "bounded" and not args.max_memory):
                continue
            r = run(mode, mp, 0)
            if mode == "exact":
                exact_out[mp] = np.load(r["output"])
                whole = r["output"].with_name(f"whole-{mp}-0-0.npy")
                if whole.exists():
                    r["diff"] = int(np.abs(np.load(whole).astype(int) - exact_out[mp]).max())
            elif mode == "bounded":
                r["exact_diff"] = int(
                    np.abs(np.load(r["output"]).astype(int) - exact_out[mp]).max()
                )
            elif mode != "whole":
                r["psnr"] = psnr(np.load(r["output"]), exact_out[mp])
            rows.append(r)
    return rows


def print_size_table(rows: list[dict]) -> None:
    whole = [r for r in rows if r["mode"] == "whole"]
    whole_rate = whole[-1]["cpu_s"] / (np.prod(SIZES[whole[-1]["mp"]]) / 1e6) if whole else None
    exact_cpu = {r["mp"]: r["cpu_s"] for r in rows if r["mode"] == "exact"}
    print("\n| mode | size | s/MP (CPU) | CPU s | wall s | peak RSS | speed-up vs whole ", end="")
    print("| vs exact | output vs exact |\n|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        w, h = SIZES[r["mp"]]
        rate = r["cpu_s"] / (w * h / 1e6)
        speedup = f"{whole_rate / rate:.1f}×" if whole_rate else "–"
        vs_exact = f"{exact_cpu[r['mp']] / r['cpu_s']:.1f}×" if r["mp"] in exact_cpu else "–"
        quality = f"PSNR {r['psnr']:.1f} dB" if "psnr" in r else "–"
        if r.get("psnr") == float("inf"):
            quality = "identical"
        if "diff" in r:
            quality = f"max diff to whole {r['diff']}/255"
        if "exact_diff" in r:
            quality = f"max diff to exact {r['exact_diff']}/255"
        peak = r["peak_rss"] / 2**30
        cells = [r["mode"], f"{w}×{h}", f"{rate:.2f}", f"{r['cpu_s']:.1f}", f"{r['wall_s']:.1f}"]
        cells += [f"{peak:.2f} GiB", speedup, vs_exact, quality]
        print("| " + " | ".join(cells) + " |")


def proxy_table(args: argparse.Namespace, run: Runner, photos: list, rows: list[dict]) -> None:
    """Fast mode at each proxy size against exact mode, every photo at 12 MP."""
    header = " | ".join(f"proxy {p}: speed-up, PSNR" for p in args.proxies)
    print(f"\n| photo (4000×3000) | exact CPU s | {header} |")
    print("|---|---:|" + "---:|" * len(args.proxies))
    for i, (name, _) in enumerate(photos):
        e = next((r for r in rows if r["mode"] == "exact" and r["mp"] == 12 and i == 0), None)
        e = e or run("exact", 12, i)
        reference = np.load(e["output"])
        cells = []
        for proxy in args.proxies:
            f = run("fast", 12, i, proxy)
            db = psnr(np.load(f["output"]), reference)
            cells.append(f"{e['cpu_s'] / f['cpu_s']:.1f}×, {db:.1f} dB")
        print(f"| {name} | {e['cpu_s']:.1f} | " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, nargs="*", help="photos (default: samples)")
    parser.add_argument("--sizes", type=int, nargs="*", default=sorted(SIZES), choices=SIZES)
    parser.add_argument("--proxies", type=int, nargs="*", default=PROXIES)
    parser.add_argument("--weights", default="default", help="weights (default: bundled)")
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        help="every pass in this dtype (default: the corrector's: float32, the fast path's "
        "proxy pass in bfloat16 on CPUs that compute it natively)",
    )
    parser.add_argument(
        "--max-memory", type=int, metavar="MIB", help="also run exact mode in this budget"
    )
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        mode, mp, photo, proxy = args.case[0], *map(int, args.case[1:])
        img = fit(photos_of(args)[photo][1], SIZES[mp])
        budget = args.max_memory * 2**20 if args.max_memory else None
        out, info = run_case(mode, img, args.weights, proxy or None, budget, args.dtype)
        np.save(args.output, out)
        print(json.dumps(info))
        return 0

    from exposure_slot import ExposureCorrector

    photos = photos_of(args)
    start = time.perf_counter()
    corrector = ExposureCorrector(args.weights, device="cpu", dtype=args.dtype)
    weights = corrector.weights_info.name
    names = ", ".join(name for name, _ in photos)
    print(describe())
    precision = f"{corrector.dtype}, fast-mode proxy pass {corrector.proxy_dtype}"
    print(f"weights {weights}; {precision}; photos: {names}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        # One copy of the weights for every case, even if the default ones change meanwhile.
        args.weights = str(corrector.save_pretrained(Path(tmp) / "weights"))
        run = Runner(args, Path(tmp))
        rows = size_table(args, run)
        print_size_table(rows)
        if 12 in args.sizes and args.proxies:
            proxy_table(args, run, photos, rows)
    print("\nplans: " + "; ".join(dict.fromkeys(r["plan"] for r in rows)))
    print(f"total {time.perf_counter() - start:.0f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
