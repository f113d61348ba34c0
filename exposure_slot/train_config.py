"""What decides a training run: :class:`TrainConfig` and the ``train`` command's options.

Apart from :mod:`exposure_slot.training`, which needs torch, so that the command line can
declare ``exposure-slot train`` and print its help without loading torch.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .descriptor import DESCRIPTOR
from .errors import ExposureSlotError, OptionError

PROG = "exposure-slot train"
DESCRIPTION = "Train or fine-tune an Exposure-slot network (resumable)."
FORMATTER = argparse.ArgumentDefaultsHelpFormatter
"""Shows each option's default after its help."""


@dataclass
class TrainConfig:
    """Everything that decides a run (saved with every checkpoint)."""

    out: str = "runs/default"
    photos: tuple[str, ...] = ()
    photo_list: str | None = None
    pairs: tuple[str, ...] = ()
    hdr: tuple[str, ...] = ()
    hdr_list: str | None = None
    hdr_fraction: float = 0.5
    target_min_mean: float = 0.0
    target_max_mean: float = 1.0
    init: str | None = None
    level: int = 2
    steps: int = 4000
    batch: int = 8
    crop: tuple[int, ...] = (128,)
    whole_fraction: float = 0.5
    mild_fraction: float = 0.0
    identity_fraction: float = 0.0
    freeze_bn: bool = False
    lr: float = 2e-4
    min_lr: float = 2e-6
    warmup: int = 100
    weight_decay: float = 1e-4
    ssim_weight: float = 0.2
    aux_weight: float = 0.1
    brightness_weight: float = 0.0
    seed: int = 0
    max_side: int = 768
    checkpoint_every: int = 100
    snapshot_every: int = 0
    scale_consistency: float = 0.0
    consistency_crop: int = 384
    anchor: str | None = None
    anchor_weight: float = 1.0
    device: str | None = None
    amp: bool = True


def add_options(p: argparse.ArgumentParser) -> None:
    """Declare the train options on ``p``, each with its help; its formatter shows the
    defaults (see :data:`FORMATTER`). The one declaration behind :func:`build_parser` and
    the command line's ``train``."""
    d = TrainConfig()
    p.add_argument("--out", default=d.out, help="run folder (checkpoint.pt, latest/)")
    p.add_argument("--photos", nargs="*", default=[], help="folders of well-exposed photos")
    p.add_argument("--photo-list", help="CSV with file,split columns: use split=train only")
    p.add_argument(
        "--pairs",
        nargs=2,
        action="append",
        default=[],
        metavar=("INPUT_DIR", "TARGET_DIR"),
        help="your own (badly exposed, corrected) photos, matched by file name; repeatable",
    )
    p.add_argument(
        "--hdr",
        nargs="*",
        default=[],
        help="folders of real scene radiance (.npy, HxWx3 linear, from "
        "scripts/fetch_hdr_scenes.py): camera frames of them are inputs, the exposure fusion "
        "of a bracket the target",
    )
    p.add_argument("--hdr-list", help="CSV with file,split columns: use split=train scenes only")
    p.add_argument(
        "--hdr-fraction",
        type=float,
        default=d.hdr_fraction,
        help="share of samples drawn from the --hdr scenes when there are also photos or pairs",
    )
    p.add_argument(
        "--target-min-mean",
        type=float,
        default=d.target_min_mean,
        metavar="M",
        help="re-expose --photos darker than mean luma M (0-1) to M before making pairs, so "
        "low-key photos do not teach a dark 'well exposed'; 0: off",
    )
    p.add_argument(
        "--target-max-mean",
        type=float,
        default=d.target_max_mean,
        metavar="M",
        help="re-expose --photos brighter than mean luma M (0-1) down to M, so high-key photos "
        "do not teach a bright 'well exposed'; 1: off",
    )
    p.add_argument("--init", help="start from these weights (e.g. 'default' to fine-tune)")
    p.add_argument(
        "--level", type=int, choices=(2, 3), default=d.level, help="slot levels of a new network"
    )
    p.add_argument("--steps", type=int, default=d.steps, help="optimiser steps of the whole run")
    p.add_argument(
        "--crop",
        type=int,
        nargs="+",
        default=list(d.crop),
        help="sample side(s) in pixels; with several, each step draws one and --batch applies to "
        "the smallest (larger sizes get proportionally fewer samples)",
    )
    p.add_argument(
        "--batch", type=int, default=d.batch, help="samples per step at the smallest crop"
    )
    p.add_argument(
        "--mild-fraction",
        type=float,
        default=d.mild_fraction,
        help="share of synthetic errors that are mild (±0.2-1.5 EV) rather than calibrated to "
        "real badly exposed photos",
    )
    p.add_argument(
        "--identity-fraction",
        type=float,
        default=d.identity_fraction,
        help="share of samples whose input is their well-exposed target itself, so that a "
        "photo that needs no correction is left alone",
    )
    p.add_argument(
        "--freeze-bn",
        action="store_true",
        help="BatchNorm uses its running statistics, as at inference (for fine-tuning, and "
        "needed when large crops leave one or two samples per batch)",
    )
    p.add_argument(
        "--max-side",
        type=int,
        default=d.max_side,
        help="photos are first downsized so their short side is at most this many pixels; "
        "larger keeps finer detail in the crops (and uses more memory: 12 bytes per pixel)",
    )
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=d.warmup, help="linear warm-up steps")
    p.add_argument(
        "--ssim-weight", type=float, default=d.ssim_weight, help="weight of the (1 - SSIM) loss"
    )
    p.add_argument(
        "--aux-weight",
        type=float,
        default=d.aux_weight,
        help="weight of the slot decoder's loss (the paper's auxiliary term)",
    )
    p.add_argument(
        "--brightness-weight",
        type=float,
        default=d.brightness_weight,
        help="weight of the difference in mean luma between output and target, per sample",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed of sampling and init")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=d.checkpoint_every,
        help="steps between checkpoints (OUT/checkpoint.pt and OUT/latest/)",
    )
    p.add_argument(
        "--snapshot-every",
        type=int,
        default=d.snapshot_every,
        help="also keep the weights of every N-th step in OUT/snap/stepN (0: only latest/), "
        "e.g. to average the last ones with scripts/average_weights.py",
    )
    p.add_argument(
        "--scale-consistency",
        type=float,
        default=d.scale_consistency,
        metavar="W",
        help="weight of a loss that makes the network's answer on a full-resolution crop match "
        "its answer on the crop shrunk 3-6x (what fast mode relies on; needs --freeze-bn); 0: off",
    )
    p.add_argument(
        "--consistency-crop",
        type=int,
        default=d.consistency_crop,
        help="side of the full-resolution crop of --scale-consistency",
    )
    p.add_argument(
        "--anchor",
        metavar="WEIGHTS",
        help="a frozen copy of these weights gives the --scale-consistency reference and, with "
        "--anchor-weight, a target at the training scale (e.g. the weights of --init)",
    )
    p.add_argument(
        "--anchor-weight",
        type=float,
        default=d.anchor_weight,
        metavar="A",
        help="weight of the L1 between the network's and the anchor's output on each batch",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument(
        "--no-amp", action="store_true", help="no fp16 autocast on CUDA (CPU always trains in fp32)"
    )
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")


def build_parser() -> argparse.ArgumentParser:
    """The ``exposure-slot train`` options, each with its help and default."""
    p = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, formatter_class=FORMATTER)
    add_options(p)
    return p


def config_from(a: argparse.Namespace) -> tuple[TrainConfig, bool]:
    """The run's configuration from parsed options, and whether to resume; options that
    cannot work raise OptionError."""
    config = TrainConfig(
        out=a.out,
        photos=tuple(a.photos),
        photo_list=a.photo_list,
        pairs=tuple(x for pair in a.pairs for x in pair),
        hdr=tuple(a.hdr),
        hdr_list=a.hdr_list,
        hdr_fraction=a.hdr_fraction,
        target_min_mean=a.target_min_mean,
        target_max_mean=a.target_max_mean,
        init=a.init,
        level=a.level,
        steps=a.steps,
        batch=a.batch,
        crop=tuple(a.crop),
        mild_fraction=a.mild_fraction,
        identity_fraction=a.identity_fraction,
        freeze_bn=a.freeze_bn,
        lr=a.lr,
        warmup=a.warmup,
        ssim_weight=a.ssim_weight,
        aux_weight=a.aux_weight,
        brightness_weight=a.brightness_weight,
        seed=a.seed,
        max_side=a.max_side,
        checkpoint_every=a.checkpoint_every,
        snapshot_every=a.snapshot_every,
        scale_consistency=a.scale_consistency,
        consistency_crop=a.consistency_crop,
        anchor=a.anchor,
        anchor_weight=a.anchor_weight,
        device=a.device,
        amp=not a.no_amp,
    )
    multiple = DESCRIPTOR.size_multiple
    if any(size % multiple or size <= 0 for size in config.crop):
        raise OptionError(f"--crop sizes must be positive multiples of {multiple}")
    if config.max_side < max(config.crop):
        raise OptionError(f"--max-side must be at least the largest --crop ({max(config.crop)})")
    if config.scale_consistency < 0:
        raise OptionError("--scale-consistency must be 0 or positive")
    if config.scale_consistency > 0 and not config.freeze_bn:
        raise OptionError("--scale-consistency needs --freeze-bn (its passes are single crops)")
    largest = config.max_side if config.scale_consistency > 0 else math.inf
    if config.consistency_crop % multiple or not 24 <= config.consistency_crop <= largest:
        raise OptionError(
            f"--consistency-crop must be a multiple of {multiple} from 24 to --max-side"
        )
    if config.anchor_weight < 0:
        raise OptionError("--anchor-weight must be 0 or positive")
    if config.brightness_weight < 0:
        raise OptionError("--brightness-weight must be 0 or positive")
    if config.snapshot_every < 0:
        raise OptionError("--snapshot-every must be 0 or positive")
    if not 0.0 <= config.mild_fraction <= 1.0:
        raise OptionError("--mild-fraction must be in [0, 1]")
    if not 0.0 <= config.identity_fraction <= 1.0:
        raise OptionError("--identity-fraction must be in [0, 1]")
    if not 0.0 <= config.hdr_fraction <= 1.0:
        raise OptionError("--hdr-fraction must be in [0, 1]")
    if not 0.0 <= config.target_min_mean < 1.0:
        raise OptionError("--target-min-mean must be in [0, 1)")
    if not 0.0 < config.target_max_mean <= 1.0:
        raise OptionError("--target-max-mean must be in (0, 1]")
    if config.target_min_mean >= config.target_max_mean:
        raise OptionError("--target-min-mean must be below --target-max-mean")
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise OptionError(f"--lr must be a positive number, got {config.lr}")
    weights = {"--ssim-weight": config.ssim_weight, "--aux-weight": config.aux_weight}
    weights |= {"--brightness-weight": config.brightness_weight}
    weights |= {"--anchor-weight": config.anchor_weight, "--scale-consistency": a.scale_consistency}
    for flag, value in weights.items():
        if not math.isfinite(value):
            raise OptionError(f"{flag} must be a finite number, got {value}")
    counts = {"--steps": config.steps, "--batch": config.batch}
    counts |= {"--checkpoint-every": config.checkpoint_every}
    for flag, value in counts.items():
        if value < 1:
            raise OptionError(f"{flag} must be at least 1, got {value}")
    if config.warmup < 0:
        raise OptionError(f"--warmup must be 0 or more, got {config.warmup}")
    if config.device is not None:  # needs torch: checked last, after the cheap checks
        from .corrector import resolve_device

        resolve_device(config.device, "--device")
    return config, not a.no_resume


def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainConfig, bool]:
    """Parse and check ``argv`` like ``exposure-slot train``; bad options exit with status 2."""
    p = build_parser()
    try:
        return config_from(p.parse_args(argv))
    except OptionError as exc:
        p.error(str(exc))


def run(config: TrainConfig, resume: bool) -> int:
    """Train with ``config``, reporting failures on stderr; returns the exit status (2: bad
    options, 1: bad data)."""
    from .training import train

    try:
        Path(config.out).mkdir(parents=True, exist_ok=True)
        (Path(config.out) / "train_config.json").write_text(json.dumps(asdict(config), indent=2))
        train(config, resume=resume)
    except OptionError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (ExposureSlotError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"weights written to {Path(config.out) / 'latest'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m exposure_slot.training``: parse ``argv`` and train; returns the exit status."""
    return run(*parse_args(argv))
