"""Evaluation protocol of Exposure-slot: PSNR/SSIM, classical baselines, paired-folder runs.

The metrics follow the authors' test code (``test.py`` and ``utils/util.py`` of
kdhRick2222/Exposure-slot), which is the protocol of its predecessors (MSEC, LCDP):

* Images are 8-bit files read as RGB at full resolution and scaled to [0, 1]; the network
  output is clipped to [0, 1] and is **not** rounded to uint8 before scoring.
* PSNR is float PSNR on the 0-255 scale, ``10 log10(255² / MSE)``, MSE over every pixel and
  channel, no border crop.
* SSIM is the MATLAB ``ssim_index.m`` recipe (Wang et al. 2004): 11×11 Gaussian window with
  σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering (the SSIM map loses the 5 outer
  pixels on each side, the window radius; nothing else is cropped), computed per RGB channel
  and averaged over channels. The authors obtain the 'valid' map by filtering with a padded
  border and cutting 5 pixels, which is the same thing.
* A group score (under / over) is the mean of the per-image scores; the overall score is the
  mean over all images of all groups.

Everything here is numpy (float64 inside) and OpenCV; scikit-image is not needed.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from .errors import (
    ImageReadError,
    ImageTooLargeError,
    ImageTypeError,
    InvalidImageError,
    OptionError,
)
from .files import READABLE_EXTENSIONS
from .synthesis import LUMA
from .visualize import fit_long_side

Method = Callable[[np.ndarray], np.ndarray]
Layout = Literal["plain", "msec", "sice", "lcdp"]

LAYOUTS: tuple[str, ...] = ("plain", "msec", "sice", "lcdp")
ALL = "all"

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_PEAK = 255.0

AUTO_GAMMA_RANGE = (0.2, 5.0)
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (8, 8)

# MSEC exposure suffixes and the authors' grouping (test.py): label < 0 is "under", the
# rest "over", so the 0 EV renderings count as over-exposed.
MSEC_GROUPS: dict[str, str] = {
    "N1.5": "under",
    "N1": "under",
    "0": "over",
    "P1": "over",
    "P1.5": "over",
}
SICE_GROUPS: dict[str, str] = {"low": "under", "over": "over"}

# (dataset, split) -> (input folder(s), target folder), relative to the dataset root, as the
# authors' prepare_*.py scripts expect them.
DATASET_LAYOUTS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("msec", "test"): (("testing/INPUT_IMAGES",), "testing/expert_c_testing_set"),
    ("msec", "validation"): (("validation/INPUT_IMAGES",), "validation/GT_IMAGES"),
    ("msec", "train"): (("training/INPUT_IMAGES",), "training/GT_IMAGES"),
    ("sice", "test"): (("test/low", "test/over"), "test/gt"),
    ("sice", "train"): (("train/low", "train/over"), "train/gt"),
    ("lcdp", "test"): (("test-input",), "test-gt"),
    ("lcdp", "train"): (("train-input",), "train-gt"),
}


# --------------------------------------------------------------------------- metrics


def _as_unit_float(img: object, name: str) -> np.ndarray:
    """Return ``img`` as float64 in [0, 1]; uint8/uint16 are scaled, floats are clipped."""
    if not isinstance(img, np.ndarray):
        raise ImageTypeError(f"{name} must be a numpy array, got {type(img).__name__}")
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 65535.0
    if not np.issubdtype(img.dtype, np.floating):
        raise ImageTypeError(f"{name} must be uint8, uint16 or float, got dtype {img.dtype}")
    out = img.astype(np.float64)
    if not np.isfinite(out).all():
        raise InvalidImageError(f"{name} contains NaN or infinite values")
    return np.clip(out, 0.0, 1.0)


def _prepare_pair(pred: object, target: object, border: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (pred, target) pair and return both on the 0-255 scale, border cropped."""
    p = _as_unit_float(pred, "pred")
    t = _as_unit_float(target, "target")
    if p.shape != t.shape:
        raise InvalidImageError(f"pred shape {p.shape} differs from target shape {t.shape}")
    if p.ndim not in (2, 3) or p.size == 0:
        raise InvalidImageError(f"images must be H×W or H×W×C and non-empty, got {p.shape}")
    if not isinstance(border, int) or border < 0:
        raise OptionError(f"border must be a non-negative int, got {border!r}")
    if border:
        if min(p.shape[:2]) <= 2 * border:
            raise InvalidImageError(f"image {p.shape[:2]} too small for a {border}-pixel border")
        p = p[border:-border, border:-border]
        t = t[border:-border, border:-border]
    return p * _PEAK, t * _PEAK


def psnr(pred: np.ndarray, target: np.ndarray, *, border: int = 0) -> float:
    """Float PSNR in dB on the 0-255 scale, as Exposure-slot/MSEC/LCDP report it.

    ``pred`` and ``target`` are H×W×C (or H×W) arrays: float in [0, 1] (values outside are
    clipped, as the authors clip the network output), uint8 or uint16. Both are scaled to
    0-255 without rounding; MSE runs over all pixels and channels. ``border`` pixels are cut
    from each side first (0, the authors' protocol). Identical images give ``inf``.
    """
    p, t = _prepare_pair(pred, target, border)
    mse = float(np.mean((p - t) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(_PEAK**2 / mse)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """SSIM's normalised 1-D Gaussian, float64 (MATLAB ``fspecial('gaussian')`` is its outer
    product); the training loss builds its window from it too."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    return k / k.sum()


_KERNEL = gaussian_window()
_RADIUS = SSIM_WINDOW // 2


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """Gaussian-filter a 2-D float64 map, keeping only the 'valid' part (no padding used)."""
    full = cv2.sepFilter2D(x, cv2.CV_64F, _KERNEL, _KERNEL, borderType=cv2.BORDER_REFLECT_101)
    return full[_RADIUS:-_RADIUS, _RADIUS:-_RADIUS]


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of the SSIM map of two 2-D float64 channels on the 0-255 scale.

    In-place arithmetic keeps a 12-megapixel channel to a few full-size temporaries.
    """
    c1 = (SSIM_K1 * _PEAK) ** 2
    c2 = (SSIM_K2 * _PEAK) ** 2
    mu_a = _filter_valid(a)
    mu_b = _filter_valid(b)
    mu_ab = mu_a * mu_b
    mu_sq_sum = np.square(mu_a, out=mu_a)
    mu_sq_sum += np.square(mu_b, out=mu_b)
    # σa² + σb² = G*(a² + b²) - μa² - μb²  (the filter is linear)
    var_sum = _filter_valid(a * a + b * b)
    var_sum -= mu_sq_sum
    cov2 = _filter_valid(a * b)
    cov2 -= mu_ab
    cov2 *= 2.0
    num = mu_ab
    num *= 2.0
    num += c1
    cov2 += c2
    num *= cov2
    mu_sq_sum += c1
    var_sum += c2
    mu_sq_sum *= var_sum
    num /= mu_sq_sum
    return float(num.mean())


def ssim(pred: np.ndarray, target: np.ndarray, *, border: int = 0) -> float:
    """MATLAB-style SSIM (``ssim_index.m``), per channel on 0-255, averaged over channels.

    Gaussian 11×11 window (σ = 1.5), K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering: the
    map covers the pixels whose whole window lies inside the image, i.e. the image minus
    the 5-pixel window radius on each side. That 5-pixel cut is part of the definition; the
    optional ``border`` crops that many more pixels beforehand (0, the authors' protocol).
    Inputs as for :func:`psnr`; each side must keep at least 11 pixels.
    """
    p, t = _prepare_pair(pred, target, border)
    if min(p.shape[:2]) < SSIM_WINDOW:
        raise InvalidImageError(
            f"SSIM needs images of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, got {p.shape[:2]}"
        )
    if p.ndim == 2:
        return _ssim_channel(p, t)
    return float(np.mean([_ssim_channel(p[..., c], t[..., c]) for c in range(p.shape[2])]))


# ------------------------------------------------------------------------- baselines


def _as_rgb(rgb: object) -> np.ndarray:
    """Validate a baseline input and return it as float64 H×W×3 in [0, 1]."""
    img = _as_unit_float(rgb, "rgb")
    if img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        raise InvalidImageError(f"rgb must be a non-empty H×W×3 image, got shape {img.shape}")
    return img


def identity(rgb: np.ndarray) -> np.ndarray:
    """Return the input unchanged (as float32): the 'do nothing' reference row."""
    return _as_rgb(rgb).astype(np.float32)


def mean_luma(rgb: np.ndarray) -> float:
    """Mean Rec. 709 luma of an RGB image in [0, 1] (in its own encoding)."""
    return float(np.mean(np.asarray(rgb, np.float64) @ LUMA))


def auto_gamma(rgb: np.ndarray) -> np.ndarray:
    """Global gamma that sends the mean luma value to 0.5: ``out = rgb ** gamma``.

    Luma is the Rec.709 weighted sum of the (gamma-encoded) R, G, B values;
    ``gamma = log(0.5) / log(mean luma)``, clamped to ``AUTO_GAMMA_RANGE`` (0.2 to 5) so
    that almost black or almost white frames are not blown up into noise or flattened.
    A pixel at the mean luma lands on 0.5; the output's own mean is near 0.5, not exactly.
    """
    img = _as_rgb(rgb)
    luma = mean_luma(img)
    luma = min(max(luma, 1e-6), 1.0 - 1e-6)
    gamma = min(max(math.log(0.5) / math.log(luma), AUTO_GAMMA_RANGE[0]), AUTO_GAMMA_RANGE[1])
    return np.power(img, gamma).astype(np.float32)


def clahe(rgb: np.ndarray) -> np.ndarray:
    """OpenCV CLAHE (clip limit 2.0, 8×8 tiles) on the L channel of CIE Lab; a, b kept.

    L is quantised to 8 bits for CLAHE: OpenCV scales the clip limit by the histogram size,
    so running it on 16-bit data (65 536 bins) would be a different, much weaker-clipped
    operator, not a finer-grained version of the usual 8-bit baseline. a and b stay float,
    and the result is converted back to float RGB in [0, 1].
    """
    lab = cv2.cvtColor(_as_rgb(rgb).astype(np.float32), cv2.COLOR_RGB2Lab)
    lightness = np.clip(np.rint(lab[..., 0] * (255.0 / 100.0)), 0, 255).astype(np.uint8)
    op = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    lab[..., 0] = op.apply(lightness).astype(np.float32) * (100.0 / 255.0)
    out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


BASELINES: dict[str, Method] = {"identity": identity, "auto_gamma": auto_gamma, "clahe": clahe}


# ------------------------------------------------------------------- paired folders


@dataclass(frozen=True)
class Pair:
    """One scored example: an input image, its ground truth and its group name."""

    input_path: Path
    target_path: Path
    group: str = ALL

    @property
    def name(self) -> str:
        """Input file stem, used as the per-image key in results."""
        return self.input_path.stem


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise OptionError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")


def _split_msec_stem(stem: str) -> tuple[str, str]:
    """Split ``a4570-_DGW0236_N1.5`` into (``a4570-_DGW0236``, ``N1.5``)."""
    base, sep, suffix = stem.rpartition("_")
    if not sep or not base or suffix not in MSEC_GROUPS:
        raise OptionError(
            f"{stem!r} is not an MSEC input name <name>_<EV> with EV in {', '.join(MSEC_GROUPS)}"
        )
    return base, suffix


def load_groups(path: str | Path) -> dict[str, str]:
    """Read a name→group mapping: a JSON object, or a CSV of ``name,group`` rows.

    Names may be file names or stems. A first CSV row ``name,group`` is taken as a header.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImageReadError(f"cannot read group mapping {path}: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OptionError(f"group mapping {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise OptionError(f"group mapping {path} must be a JSON object of name: group")
        return {str(k): v for k, v in data.items()}
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["name", "group"]:
        rows = rows[1:]
    bad = [r for r in rows if len(r) < 2 or not r[0].strip() or not r[1].strip()]
    if bad:
        raise OptionError(f"group mapping {path}: row {bad[0]!r} is not 'name,group'")
    return {r[0].strip(): r[1].strip() for r in rows}


def group_of(
    path: str | Path, layout: Layout = "plain", groups: Mapping[str, str] | None = None
) -> str:
    """Group of an input image under a dataset layout.

    * ``msec``: from the exposure suffix: ``_N1.5``/``_N1`` → under, ``_0``/``_P1``/``_P1.5``
      → over (the authors' test.py: label < 0 is under, everything else over).
    * ``sice``: from the parent folder: ``low`` → under, ``over`` → over.
    * ``lcdp``: always ``all`` (the paper reports one LCDP score).
    * ``plain``: ``groups[file name]`` or ``groups[stem]`` if given, else ``all``.
    """
    _check_layout(layout)
    path = Path(path)
    if layout == "msec":
        return MSEC_GROUPS[_split_msec_stem(path.stem)[1]]
    if layout == "sice":
        folder = path.parent.name.lower()
        if folder not in SICE_GROUPS:
            raise OptionError(f"SICE input {path} must sit in a 'low' or 'over' folder")
        return SICE_GROUPS[folder]
    if layout == "plain" and groups:
        return groups.get(path.name, groups.get(path.stem, ALL))
    return ALL


def _list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    if not folder.is_dir():
        raise ImageReadError(f"folder not found: {folder}")
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in READABLE_EXTENSIONS
    )


def _sice_input_folders(input_dir: Path) -> list[Path]:
    """SICE inputs: ``input_dir`` itself if named low/over, else its low/ and over/ folders."""
    if input_dir.name.lower() in SICE_GROUPS:
        return [input_dir]
    folders = [input_dir / name for name in SICE_GROUPS if (input_dir / name).is_dir()]
    if not folders:
        raise ImageReadError(f"SICE input folder {input_dir} has no 'low' or 'over' subfolder")
    return folders


def find_pairs(
    input_dir: str | Path,
    target_dir: str | Path,
    *,
    layout: Layout = "plain",
    groups: str | Path | Mapping[str, str] | None = None,
) -> list[Pair]:
    """Match every input image to its ground truth by file stem.

    Images are the files directly inside the folders with a known image extension (any
    case). The target of an input is the target file with the same stem, except for
    ``msec``, where the exposure suffix is dropped first (``a0001-x_N1.5.JPG`` →
    ``a0001-x.jpg``). For ``sice``, ``input_dir`` is the folder holding ``low/`` and
    ``over/`` (or one of those). ``groups`` (``plain`` only) is a mapping or a JSON/CSV file,
    see :func:`load_groups`. Every input must have exactly one target, otherwise
    :class:`ImageReadError` lists the offenders; targets without an input are ignored.
    """
    _check_layout(layout)
    input_dir, target_dir = Path(input_dir), Path(target_dir)
    if groups is not None and layout != "plain":
        raise OptionError(f"groups= only applies to layout 'plain', not {layout!r}")
    mapping = load_groups(groups) if isinstance(groups, (str, Path)) else groups

    folders = _sice_input_folders(input_dir) if layout == "sice" else [input_dir]
    inputs = [p for folder in folders for p in _list_images(folder)]
    if not inputs:
        raise ImageReadError(f"no images found in {input_dir}")

    targets: dict[str, Path] = {}
    for path in _list_images(target_dir):
        if path.stem in targets:
            raise ImageReadError(
                f"ambiguous targets in {target_dir}: {targets[path.stem].name} and {path.name}"
            )
        targets[path.stem] = path

    pairs, missing = [], []
    for path in inputs:
        key = _split_msec_stem(path.stem)[0] if layout == "msec" else path.stem
        if key in targets:
            pairs.append(Pair(path, targets[key], group_of(path, layout, mapping)))
        else:
            missing.append(path.name)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ImageReadError(
            f"{len(missing)} input(s) have no target with the same stem in {target_dir}: {shown}"
        )
    return pairs


def dataset_pairs(
    root: str | Path, dataset: Literal["msec", "sice", "lcdp"], split: str = "test"
) -> list[Pair]:
    """Pairs of a paper dataset stored in the layout the authors' prepare_*.py expect.

    * MSEC: ``testing/INPUT_IMAGES`` + ``testing/expert_c_testing_set`` (test, 5 × 1181);
      ``validation/`` and ``training/`` use ``INPUT_IMAGES`` + ``GT_IMAGES``.
    * SICE (the authors' SICEV2 split): ``test/low``, ``test/over`` + ``test/gt``
      (same file name in all three); ``train/`` alike.
    * LCDP: ``test-input`` + ``test-gt`` (``train-input`` + ``train-gt``).
    """
    key = (dataset, split)
    if key not in DATASET_LAYOUTS:
        known = ", ".join(f"{d}/{s}" for d, s in DATASET_LAYOUTS)
        raise OptionError(f"unknown dataset/split {dataset}/{split}; known: {known}")
    input_dirs, target_dir = DATASET_LAYOUTS[key]
    root = Path(root)
    return [
        pair
        for input_dir in input_dirs
        for pair in find_pairs(root / input_dir, root / target_dir, layout=dataset)
    ]


# ------------------------------------------------------------------------ evaluation


def _load_rgb(path: Path) -> np.ndarray:
    """Read an image file as float32 RGB in [0, 1] (Pillow, 8 bits, EXIF orientation ignored
    as in the authors' loader)."""
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image {path} is too large to read: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from exc
    return arr.astype(np.float32) / 255.0


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize with area averaging when shrinking, bicubic otherwise."""
    shrinking = height * width < img.shape[0] * img.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return np.clip(cv2.resize(img, (width, height), interpolation=interp), 0.0, 1.0)


@dataclass(frozen=True)
class ImageScore:
    """PSNR/SSIM of one method on one image, and the mean luma of its output and of the
    target (whether a method's errors are mostly brightness)."""

    method: str
    name: str
    group: str
    psnr: float
    ssim: float
    luma: float = math.nan
    target_luma: float = math.nan


@dataclass(frozen=True)
class GroupScore:
    """Mean PSNR/SSIM (and output and target luma) of one method over one group's images."""

    psnr: float
    ssim: float
    count: int
    luma: float = math.nan
    target_luma: float = math.nan


def _group_order(groups: Iterable[str]) -> tuple[str, ...]:
    """Groups for the report: under, over, others alphabetically, then ``all``."""
    named = set(groups) - {ALL}
    known = [g for g in ("under", "over") if g in named]
    return (*known, *sorted(named - set(known)), ALL)


@dataclass(frozen=True)
class Results:
    """Per-image scores of one or more methods, with group and overall means."""

    scores: tuple[ImageScore, ...]
    methods: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def groups(self) -> tuple[str, ...]:
        """Report columns: the named groups present, then ``all`` (every image)."""
        return _group_order(s.group for s in self.scores)

    def summary(self) -> dict[str, dict[str, GroupScore]]:
        """``{method: {group: GroupScore}}``; ``all`` is the mean over every image."""
        out: dict[str, dict[str, GroupScore]] = {}
        for method in self.methods:
            mine = [s for s in self.scores if s.method == method]
            out[method] = {}
            for group in self.groups:
                chosen = [s for s in mine if group in (ALL, s.group)]
                out[method][group] = GroupScore(
                    psnr=float(np.mean([s.psnr for s in chosen])),
                    ssim=float(np.mean([s.ssim for s in chosen])),
                    count=len(chosen),
                    luma=float(np.mean([s.luma for s in chosen])),
                    target_luma=float(np.mean([s.target_luma for s in chosen])),
                )
        return out

    def table(self, markdown: bool = True) -> str:
        """Rows = methods; columns = PSNR and SSIM per group (``n`` images each) + count.

        PSNR has 2 decimals and SSIM 4, as in the paper. ``markdown=False`` gives aligned
        plain text.
        """
        summary = self.summary()
        header = ["method"]
        for group in self.groups:
            n = summary[self.methods[0]][group].count if self.methods else 0
            header += [f"{group} (n={n}) PSNR", f"{group} SSIM"]
        header.append("count")
        rows = [header]
        for method in self.methods:
            row = [method]
            for group in self.groups:
                score = summary[method][group]
                row += [f"{score.psnr:.2f}", f"{score.ssim:.4f}"]
            row.append(str(summary[method][ALL].count))
            rows.append(row)
        if markdown:
            lines = ["| " + " | ".join(r) + " |" for r in rows]
            lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
            return "\n".join(lines)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )

    def to_json(self, indent: int | None = 2) -> str:
        """Summary, per-image scores and notes as strict JSON: the infinite PSNR of identical
        images (and any other non-finite number) is written as ``null``."""
        payload = {
            "protocol": "float PSNR on 0-255; SSIM 11x11 Gaussian sigma 1.5, valid, per channel",
            "methods": list(self.methods),
            "groups": list(self.groups),
            "summary": {
                m: {g: asdict(s) for g, s in by_group.items()}
                for m, by_group in self.summary().items()
            },
            "images": [asdict(s) for s in self.scores],
            "notes": list(self.notes),
        }
        return json.dumps(_finite_or_none(payload), indent=indent, allow_nan=False)


def _finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (inside dicts and lists) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def evaluate(
    method: Method | Mapping[str, Method],
    pairs: Iterable[Pair],
    *,
    resize_long_side: int | None = None,
    progress: bool = True,
) -> Results:
    """Score one or several methods on paired images in a single pass.

    ``method`` is a callable ``rgb -> rgb`` (float32 H×W×3 in [0, 1] both ways) or a dict
    of them by name; each image pair is read once and fed to every method. A target whose
    size differs from its input is resized to the input's size (recorded in
    ``Results.notes`` and warned about). ``resize_long_side`` downscales input and target
    so the longer side is at most that many pixels (faster, but no longer the paper's
    full-resolution protocol).
    """
    methods = dict(method) if isinstance(method, Mapping) else {_method_name(method): method}
    if not methods or not all(callable(f) for f in methods.values()):
        raise OptionError("method must be a callable or a non-empty dict of callables")
    if resize_long_side is not None and (
        not isinstance(resize_long_side, int) or resize_long_side < SSIM_WINDOW
    ):
        raise OptionError(
            f"resize_long_side must be an int >= {SSIM_WINDOW} or None, got {resize_long_side!r}"
        )
    pairs = list(pairs)
    if not pairs:
        raise OptionError("no image pairs to evaluate")

    scores: list[ImageScore] = []
    notes: list[str] = []
    for pair in tqdm(pairs, desc="evaluate", unit="img", disable=not progress):
        rgb = _load_rgb(pair.input_path)
        target = _load_rgb(pair.target_path)
        if target.shape != rgb.shape:
            notes.append(
                f"{pair.target_path.name}: target {target.shape[1]}x{target.shape[0]} resized "
                f"to input size {rgb.shape[1]}x{rgb.shape[0]}"
            )
            target = _resize(target, rgb.shape[0], rgb.shape[1])
        if resize_long_side is not None:
            rgb = fit_long_side(rgb, resize_long_side)
            target = fit_long_side(target, resize_long_side)
        for name, fn in methods.items():
            out = fn(rgb.copy())
            if not isinstance(out, np.ndarray) or out.shape != rgb.shape:
                got = getattr(out, "shape", type(out).__name__)
                raise InvalidImageError(
                    f"method {name!r} returned {got} for {pair.input_path}, expected {rgb.shape}"
                )
            scores.append(
                ImageScore(
                    name,
                    pair.name,
                    pair.group,
                    psnr(out, target),
                    ssim(out, target),
                    mean_luma(out),
                    mean_luma(target),
                )
            )
    if notes:
        warnings.warn(
            f"{len(notes)} target(s) had a different size from their input and were resized; "
            "see Results.notes",
            stacklevel=2,
        )
    return Results(tuple(scores), tuple(methods), tuple(notes))


def _method_name(fn: Method) -> str:
    """Display name of a bare callable."""
    return getattr(fn, "__name__", type(fn).__name__)
