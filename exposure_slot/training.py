"""Train or fine-tune an Exposure-slot network on photos.

Three kinds of data, mixable: plain well-exposed photos (``--photos``), from which
:mod:`exposure_slot.synthesis` makes realistic badly exposed inputs on the fly, the user's
own (input, target) pairs (``--pairs INPUT_DIR TARGET_DIR``, matched by file stem), and real
scene radiance (``--hdr``, ``.npy`` files from scripts/fetch_hdr_scenes.py), whose camera
frames are inputs and the fusion of a bracket the target.

Loss: L1 + ``ssim_weight`` · (1 − SSIM) + ``aux_weight`` · MSE of the slot decoder
(the paper's auxiliary loss), optionally + ``brightness_weight`` · |difference of mean luma|
per sample (:func:`brightness_loss`). AdamW with linear warm-up and a cosine schedule. Samples mix
whole photos downsized to the crop size (as the paper trains on 256×256 whole images) with
random crops at random scales. With several crop sizes (``--crop 128 256 384``) each step
draws one size and a batch of the same number of pixels, so the network learns to give the
same correction at every working resolution. Batches of one or two large samples need
``--freeze-bn``: BatchNorm then normalises with its running statistics as at inference,
instead of with the statistics of the batch, which for a single photo would remove the very
brightness the network must correct. ``--scale-consistency W`` adds W · L1 between the
network's output on a crop at the photo's own resolution, shrunk, and its output on the shrunk
crop (held fixed): it teaches the network to give a high-resolution photo the answer it gives
a small proxy of it, which is what fast mode relies on. ``--anchor WEIGHTS`` holds a frozen
copy of a network: the consistency reference then comes from it, and ``--anchor-weight A``
adds A · L1 to its output on every training batch, so the answer at the training scale stays
where it was while consistency moves the high-resolution one. Checkpoints are resumable and
written atomically.

Run ``python -m exposure_slot.training --help`` (or ``exposure-slot train --help``); the
options and :class:`TrainConfig` live in :mod:`exposure_slot.train_config`.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import time
from collections.abc import Sequence, Set
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .errors import ExposureSlotError, InvalidImageError, OptionError, WeightsIntegrityError
from .evaluation import SSIM_K1, SSIM_K2, gaussian_window
from .files import READABLE_EXTENSIONS, read_image
from .highres import fast
from .network import ExposureSlotNet, NetConfig
from .pixel_values import LUMA
from .synthesis import check_radiance, expose_into, make_pair, make_scene_pair
from .train_config import TrainConfig
from .weights import load_weights, save_folder
from .weights.convert import load_failure

SCENE_SUFFIXES = {".npy"}
MAX_WHOLE_ASPECT = 2.0
"""Images more elongated than this are never resized whole to a square sample."""


def _read_rgb(path: Path, max_side: int) -> np.ndarray:
    """A photo as float32 RGB in [0, 1] (upright, 16-bit kept), downsized so its short side
    is ≤ ``max_side``; an unreadable file is an ImageReadError naming it."""
    rgb = read_image(path).rgb
    h, w = rgb.shape[:2]
    scale = max_side / min(h, w)
    if scale < 1:
        rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb, dtype=np.float32)


def list_photos(
    folders: Sequence[str], photo_list: str | None, suffixes: Set[str] = READABLE_EXTENSIONS
) -> list[Path]:
    """Files with ``suffixes`` under ``folders``; with ``photo_list`` (a CSV with ``file``
    and ``split`` columns, like docs/training_photos.csv) only those whose split is
    ``train``."""
    for folder in folders:
        if not Path(folder).is_dir():
            raise OptionError(f"photo folder not found: {folder}")
    paths = sorted(
        p for folder in folders for p in Path(folder).rglob("*") if p.suffix.lower() in suffixes
    )
    if photo_list:
        with open(photo_list, newline="") as handle:
            train = {row["file"] for row in csv.DictReader(handle) if row["split"] == "train"}
        paths = [p for p in paths if p.name in train]
    return paths


def _read_scene(path: Path, max_side: int) -> np.ndarray:
    """Scene radiance from a ``.npy`` file (HxWx3, linear) as float32, downsized like the
    photos; an unreadable or malformed file is an InvalidImageError naming it."""
    try:
        radiance = check_radiance(np.load(path, allow_pickle=False), name=str(path))
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
        if isinstance(exc, ExposureSlotError):
            raise
        raise InvalidImageError(f"{path}: not a scene radiance .npy file ({exc})") from exc
    h, w = radiance.shape[:2]
    scale = max_side / min(h, w)
    if scale < 1:
        size = (round(w * scale), round(h * scale))
        radiance = cv2.resize(radiance, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(radiance)


def list_pairs(input_dir: str, target_dir: str) -> list[tuple[Path, Path]]:
    """(input, target) files matched by stem; inputs without a target are an error."""
    for folder in (input_dir, target_dir):
        if not Path(folder).is_dir():
            raise OptionError(f"pair folder not found: {folder}")
    targets = {
        p.stem: p for p in Path(target_dir).iterdir() if p.suffix.lower() in READABLE_EXTENSIONS
    }
    pairs, missing = [], []
    for p in sorted(Path(input_dir).iterdir()):
        if p.suffix.lower() not in READABLE_EXTENSIONS:
            continue
        if p.stem in targets:
            pairs.append((p, targets[p.stem]))
        else:
            missing.append(p.name)
    if missing:
        raise OptionError(f"no target in {target_dir} for {len(missing)} inputs: {missing[:5]}")
    return pairs


class Sampler:
    """Draws training pairs: synthetic from good photos, crops of the user's pairs, or (a
    share ``hdr_fraction``) camera frames of real scene radiance with fused targets."""

    def __init__(self, config: TrainConfig, rng: np.random.Generator):
        self.config, self.rng = config, rng
        self.photos = [
            _read_rgb(p, config.max_side) for p in list_photos(config.photos, config.photo_list)
        ]
        if config.target_min_mean > 0 or config.target_max_mean < 1:
            low, high = config.target_min_mean, config.target_max_mean
            self.photos = [expose_into(photo, low, high) for photo in self.photos]
        self.scene_paths = list_photos(config.hdr, config.hdr_list, SCENE_SUFFIXES)
        self.scenes = [_read_scene(p, config.max_side) for p in self.scene_paths]
        if config.hdr and not self.scenes:
            raise OptionError(f"no training scenes (.npy) in {', '.join(config.hdr)}")
        self.pairs = []
        for i in range(0, len(config.pairs), 2):
            for a, b in list_pairs(config.pairs[i], config.pairs[i + 1]):
                inp, tgt = _read_rgb(a, config.max_side), _read_rgb(b, config.max_side)
                if inp.shape != tgt.shape:
                    tgt = cv2.resize(tgt, inp.shape[1::-1], interpolation=cv2.INTER_AREA)
                self.pairs.append((inp, tgt))
        if not self.photos and not self.pairs and not self.scenes:
            raise OptionError(
                "no training images: pass --photos DIR, --pairs IN_DIR GT_DIR and/or --hdr DIR"
            )

    def _view(self, size: int, *images: np.ndarray) -> list[np.ndarray]:
        """The same whole-image resize or random-scale crop of each image to ``size``²,
        maybe flipped; images wider than ``MAX_WHOLE_ASPECT`` (panoramas) are always
        cropped, not squeezed."""
        rng = self.rng
        h, w = images[0].shape[:2]
        if rng.random() < self.config.whole_fraction and max(h, w) <= MAX_WHOLE_ASPECT * min(h, w):
            views = [cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images]
        else:
            side = int(min(h, w) * rng.uniform(0.25, 1.0))
            side = max(side, min(size, h, w))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            views = [
                cv2.resize(
                    im[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA
                )
                for im in images
            ]
        if rng.random() < 0.5:
            views = [v[:, ::-1] for v in views]
        return [np.ascontiguousarray(v) for v in views]

    def sample(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        inp, target = self._draw(size)
        # With the default 0 nothing is drawn here, so seeded runs keep their stream.
        if self.config.identity_fraction > 0 and self.rng.random() < self.config.identity_fraction:
            return target, target
        return inp, target

    def _draw(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        n_photos, n_pairs = len(self.photos), len(self.pairs)
        # Without scenes nothing is drawn here, so seeded runs on photos keep their stream.
        if self.scenes and (not n_photos + n_pairs or self.rng.random() < self.config.hdr_fraction):
            (radiance,) = self._view(size, self.scenes[int(self.rng.integers(len(self.scenes)))])
            inp, target, _ = make_scene_pair(
                radiance, self.rng, mild_fraction=self.config.mild_fraction
            )
            return inp, target
        i = int(self.rng.integers(n_photos + n_pairs))
        if i < n_photos:
            (target,) = self._view(size, self.photos[i])
            inp, target, _ = make_pair(target, self.rng, mild_fraction=self.config.mild_fraction)
            return inp, target
        inp, target = self._view(size, *self.pairs[i - n_photos])
        return inp, target

    def detail_input(self, size: int) -> torch.Tensor:
        """A badly exposed ``size``² crop at the held resolution (no resize), as (1, 3, s, s):
        the close-up texture a high-resolution pass sees."""
        rng = self.rng
        i = int(rng.integers(len(self.photos) + len(self.pairs)))
        image = self.photos[i] if i < len(self.photos) else self.pairs[i - len(self.photos)][0]
        h, w = image.shape[:2]
        side = min(size, h, w) // 4 * 4
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = np.ascontiguousarray(image[y : y + side, x : x + side])
        if i < len(self.photos):
            crop, _, _ = make_pair(crop, rng, mild_fraction=self.config.mild_fraction)
        return torch.from_numpy(crop).permute(2, 0, 1)[None].contiguous()

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch at one crop size drawn from ``config.crop``: ``config.batch`` samples at the
        smallest size, fewer at larger ones (same pixel count, at least one)."""
        sizes = self.config.crop
        # One size draws nothing, so seeded single-size runs keep their random stream.
        size = int(sizes[self.rng.integers(len(sizes))]) if len(sizes) > 1 else sizes[0]
        n = max(1, round(self.config.batch * (min(sizes) / size) ** 2))
        inputs, targets = zip(*(self.sample(size) for _ in range(n)), strict=True)
        to_t = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
        return to_t(inputs), to_t(targets)


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − SSIM, differentiable: evaluation's SSIM (same window, constants and 'valid'
    filtering, per channel) on [0, 1] tensors, in their dtype."""
    g = torch.as_tensor(gaussian_window(), dtype=pred.dtype, device=pred.device)
    size = g.shape[0]
    window = (g[:, None] * g[None, :]).expand(pred.shape[1], 1, size, size).contiguous()
    blur = lambda x: F.conv2d(x, window, groups=pred.shape[1])  # noqa: E731
    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # L = 1
    ssim = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    )
    return 1 - ssim.mean()


def brightness_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of |mean luma of ``pred`` − mean luma of ``target``|: one number
    per sample, so a photo's overall brightness counts as much as all its pixels do in L1."""
    luma = torch.as_tensor(LUMA, dtype=pred.dtype, device=pred.device)[None, :, None, None]
    mean = lambda x: (x * luma).sum(1).mean((1, 2))  # noqa: E731
    return (mean(pred) - mean(target)).abs().mean()


def scale_consistency_loss(
    net: ExposureSlotNet,
    detail: torch.Tensor,
    factor: float,
    reference_net: ExposureSlotNet | None = None,
) -> torch.Tensor:
    """L1 between ``net(detail)`` shrunk by ``factor`` and ``reference_net`` (default: ``net``)
    of the shrunk ``detail``.

    The small pass is the reference (no gradient): it is the scale the network is trained at
    and the one fast mode runs, so only the full-resolution answer is pulled towards it.
    """
    h, w = detail.shape[-2:]
    size = fast.proxy_size(h, w, long_side=max(4, round(max(h, w) / factor)))
    with torch.no_grad():
        reference = (reference_net or net)(fast.downscale(detail, size)).image.float()
    return F.l1_loss(fast.downscale(net(detail).image.float(), size), reference)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine from ``lr`` to ``min_lr`` at ``steps``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    t = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * t))


def build_model(config: TrainConfig) -> ExposureSlotNet:
    """A fresh network (``init=None``) or one initialised from any weights source."""
    slot_counts = (3, 7) if config.level == 2 else (3, 7, 10)
    net = ExposureSlotNet(NetConfig(slot_counts=slot_counts), slot_decoder=True)
    if config.init:
        source, _ = load_weights(config.init)
        missing = net.load_state_dict(source.float().state_dict(), strict=False)
        if any(not k.startswith("slot_decoder.") for k in missing.missing_keys):
            raise OptionError(f"--init weights do not fit a level-{config.level} network")
    return net


def load_anchor(config: TrainConfig, device: torch.device) -> ExposureSlotNet | None:
    """The frozen network of ``--anchor`` (float32, inference mode), or None."""
    if not config.anchor:
        return None
    anchor, _ = load_weights(config.anchor)
    if anchor.config.level != config.level:
        raise OptionError(f"--anchor weights are not a level-{config.level} network")
    return anchor.float().eval().requires_grad_(False).to(device)


def _save_atomic(obj: object, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _resume(
    path: Path,
    config: TrainConfig,
    net: ExposureSlotNet,
    opt: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> tuple[int, list]:
    """Restore a run from its checkpoint; returns (step, history). A checkpoint of another
    level is an OptionError, an unreadable one a WeightsIntegrityError (both say the way out)."""
    way_out = "delete it, give another --out, or --no-resume"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        raise WeightsIntegrityError(
            f"cannot resume from {path}: not a readable checkpoint ({load_failure(exc)}); {way_out}"
        ) from exc
    saved = state.get("config") if isinstance(state, dict) else None
    level = saved.get("level") if isinstance(saved, dict) else None
    if level is not None and level != config.level:
        raise OptionError(
            f"{path} is the checkpoint of a level-{level} run: --level {config.level} cannot "
            f"resume it; give --level {level}, another --out, or --no-resume"
        )
    try:
        net.load_state_dict(state["model"])
        if "optimizer" in state:
            opt.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        return int(state["step"]), list(state.get("history", []))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsIntegrityError(
            f"cannot resume from {path}: it is not a checkpoint of this run ({exc}); {way_out}"
        ) from exc


def train(config: TrainConfig, resume: bool = True) -> ExposureSlotNet:
    """Run (or resume) training; returns the trained network (with its slot decoder)."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(config.seed)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = build_model(config).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, history = 0, []
    rng = np.random.default_rng(config.seed)
    if resume and ckpt_path.is_file():
        step, history = _resume(ckpt_path, config, net, opt, rng)
    sampler = Sampler(config, rng)
    anchor = load_anchor(config, device)
    # Autocast only on CUDA (fp16 with loss scaling): on CPUs without native bf16 (e.g. AMD
    # Zen 3) bf16 convolutions measured about 10x slower than fp32.
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    stop = {"now": False}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def checkpoint() -> None:
        _save_atomic(
            {
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "history": history,
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "config": asdict(config),
            },
            ckpt_path,
        )
        save_folder(net, out / "latest", extra_config={"trained_steps": step})
        if config.snapshot_every and step % config.snapshot_every == 0:
            save_folder(net, out / "snap" / f"step{step}", extra_config={"trained_steps": step})

    net.train()
    if config.freeze_bn:
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()
    bar = tqdm(total=config.steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    try:
        while step < config.steps and not stop["now"]:
            inputs, targets = (t.to(device) for t in sampler.batch())
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, config)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                result = net(inputs)
            pred = result.image.float()
            l1 = F.l1_loss(pred, targets)
            loss = l1 + config.ssim_weight * ssim_loss(pred.clamp(0, 1), targets)
            if result.slot_map is not None and config.aux_weight > 0:
                loss = loss + config.aux_weight * F.mse_loss(result.slot_map.float(), targets)
            extra = {}
            if config.brightness_weight > 0:
                brightness = brightness_loss(pred, targets)
                loss = loss + config.brightness_weight * brightness
                extra["brightness"] = brightness.item()
            if anchor is not None and config.anchor_weight > 0:
                with torch.no_grad(), torch.autocast(device.type, torch.float16, enabled=use_amp):
                    held = anchor(inputs).image.float()
                anchor_l1 = F.l1_loss(pred, held)
                loss = loss + config.anchor_weight * anchor_l1
                extra["anchor"] = anchor_l1.item()
            if config.scale_consistency > 0:
                detail = sampler.detail_input(config.consistency_crop).to(device)
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    consistency = scale_consistency_loss(net, detail, rng.uniform(3.0, 6.0), anchor)
                loss = loss + config.scale_consistency * consistency
                extra["consistency"] = consistency.item()
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            step += 1
            record = {
                "step": step,
                "loss": loss.item(),
                "l1": l1.item(),
                **extra,
                "time": time.time(),
            }
            history.append(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.4f}", l1=f"{record['l1']:.4f}")
            if step % config.checkpoint_every == 0:
                checkpoint()
    except KeyboardInterrupt:
        stop["now"] = True
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
        checkpoint()
    return net.eval()


if __name__ == "__main__":
    from .train_config import main

    raise SystemExit(main())
