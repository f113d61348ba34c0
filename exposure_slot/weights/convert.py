"""Read and write Exposure-slot weights in the authors' and in our own format.

Like spandrel, the architecture is recognised from the state-dict keys and every
hyperparameter is read from tensor shapes, so a checkpoint needs no side information.
The authors' key names are translated by :data:`AUTHORS_KEY_TABLE`, the only place that
knows them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..errors import OptionError, WeightsError, WeightsIntegrityError, WeightsNotFoundError
from ..network import CONFIG_LIMITS, ExposureSlotNet, NetConfig

StateDict = dict[str, torch.Tensor]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ARCHITECTURE = "exposure-slot"

AUTHORS_KEY_TABLE: tuple[tuple[str, str | None], ...] = (
    # (regular expression on the authors' key, our key; None = not used, dropped)
    (r"(^|\.)slots_logsigma$", None),
    (r"slot_list\.0\.(\w+\.)*(to_k|to_v|norm_input)\.", None),
    (r"^conv_fusion\.", None),
    (r"^TransformerBlock\.blocks\.0\.0\.slot_list\.0\.", "block.attn.slots."),
    (r"^TransformerBlock\.blocks\.0\.0\.", "block.attn."),
    (r"^TransformerBlock\.blocks\.0\.1\.norm\.", "block.ffn_norm."),
    (r"^TransformerBlock\.blocks\.0\.1\.fn\.net\.", "block.ffn."),
    (r"\.sub2?_slot_attention(?=\.)", ".child"),
    (r"\.norm_k_inp\.", ".norm_k."),
    (r"\.norm_v_inp\.", ".norm_v."),
    (r"\.norm_pre_ff\.", ".norm_mlp."),
    (r"^conv1_1\.", "conv_in."),
    (r"^conv1_2\.", "enc1."),
    (r"^conv2_2\.", "enc2."),
    (r"^conv3_2\.", "enc3."),
    (r"^conv4_1\.", "dec2a."),
    (r"^conv4_2\.", "dec2b."),
    (r"^conv5_1\.", "dec1a."),
    (r"^conv5_2\.", "dec1b."),
    (r"^conv6\.", "head."),
    (r"^batchnorm(\d)\.", r"bn\1."),
    (r"(^|\.)downsample(\d)\.body\.", r"\1down\2."),
    (r"(^|\.)upsample(\d)\.body\.", r"\1up\2."),
)
"""The authors' names → ours, applied in order; ``None`` drops a key the network never
uses (the projections and log-sigmas the authors register but never call in slot levels,
and the level-2 ``conv_fusion``)."""

_AUTHORS_MARKER = "TransformerBlock.blocks.0.0.slot_list.0.slots_mu"
_OURS_MARKER = "block.attn.slots.slots_mu"


def authors_to_ours(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Translate an authors' state dict to our key names, dropping unused tensors."""
    out: StateDict = {}
    for key, tensor in state.items():
        new: str | None = key
        for pattern, replacement in AUTHORS_KEY_TABLE:
            if not re.search(pattern, new):
                continue
            if replacement is None:
                new = None
                break
            new = re.sub(pattern, replacement, new)
        if new is not None:
            out[new] = tensor
    return out


def detect_format(state: Mapping[str, torch.Tensor]) -> str:
    """``"authors"`` or ``"ours"``; raises :class:`WeightsError` for anything else."""
    if _AUTHORS_MARKER in state:
        return "authors"
    if _OURS_MARKER in state:
        return "ours"
    sample = ", ".join(list(state)[:5]) or "(empty)"
    raise WeightsError(
        f"not an Exposure-slot state dict: no '{_OURS_MARKER}' or '{_AUTHORS_MARKER}' key "
        f"(first keys: {sample})"
    )


def infer_config(state: Mapping[str, torch.Tensor], iterations: int = 3) -> NetConfig:
    """Read the hyperparameters of a state dict in our key names from tensor shapes
    (``iterations`` leaves no trace in them: it comes from ``config.json``, if any)."""
    counts = []
    prefix = "block.attn.slots."
    while f"{prefix}slots_mu" in state and len(counts) <= CONFIG_LIMITS["levels"][1]:
        counts.append(_dim(state, f"{prefix}slots_mu", 1))
        prefix += "child."
    if not counts:
        raise WeightsError("state dict has no slot levels")
    dim = _dim(state, "block.attn.slots.slots_mu", 2)
    if dim % 4:
        raise WeightsError(f"block.attn.slots.slots_mu has {dim} channels, not a multiple of 4")
    return NetConfig(slot_counts=tuple(counts), width=dim // 4, iterations=iterations)


def _dim(state: Mapping[str, torch.Tensor], key: str, axis: int) -> int:
    """Size of ``state[key]`` along ``axis`` of its ``1×slots×channels`` shape."""
    shape = tuple(state[key].shape)
    if len(shape) != 3 or shape[0] != 1:
        raise WeightsError(f"{key} has shape {shape}, not 1×slots×channels")
    return int(shape[axis])


def to_ours(state: Mapping[str, torch.Tensor]) -> StateDict:
    """A state dict in either format, in our key names."""
    state = dict(state)
    return authors_to_ours(state) if detect_format(state) == "authors" else state


def build_network(
    state: Mapping[str, torch.Tensor], config: NetConfig | None = None
) -> ExposureSlotNet:
    """Recognise, check, build and load a network from a state dict in either key format.

    ``config`` (from ``config.json``) must agree with the tensor shapes, which give every
    field but ``iterations``. Keys and shapes are checked against a network built on the
    meta device (no memory) before the real one is allocated, and every tensor must be
    finite. Training-only tensors (the slot decoder) are loaded when present; every other
    key must match exactly, and a mismatch names the missing and unexpected keys.
    """
    state = to_ours(state)
    inferred = infer_config(state, config.iterations if config is not None else 3)
    if config is not None and config != inferred:
        field, said, found = next(
            (name, value, getattr(inferred, name))
            for name, value in config.to_dict().items()
            if getattr(inferred, name) != (tuple(value) if isinstance(value, list) else value)
        )
        raise WeightsError(
            f"{CONFIG_NAME} says {field} {said} but the weights have "
            f"{list(found) if isinstance(found, tuple) else found}"
        )
    config = inferred
    has_decoder = any(k.startswith("slot_decoder.") for k in state)
    with torch.device("meta"):
        expected = ExposureSlotNet(config, slot_decoder=has_decoder).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"weights do not fit a level-{config.level} Exposure-slot network "
            f"(slots {list(config.slot_counts)}): missing keys {_short(missing)}, "
            f"unexpected keys {_short(unexpected)}"
        )
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if state[k].shape != v.shape
    ]
    if wrong:
        raise WeightsError(f"tensor shapes do not fit the network: {_short(wrong)}")
    broken = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if broken:
        raise WeightsError(f"tensors holding NaN or infinite values: {_short(broken)}")
    net = ExposureSlotNet(config, slot_decoder=has_decoder)
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    return net.eval()


def _short(items: list[str], limit: int = 8) -> str:
    if not items:
        return "none"
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return "[" + ", ".join(items[:limit]) + "]" + more


def read_state_dict(path: str | Path) -> StateDict:
    """Tensors of a ``.pth``/``.pt``/``.ckpt`` or ``.safetensors`` file, never unpickling code.

    ``.pth`` files go through ``torch.load(weights_only=True)``, which refuses pickles
    that would run code; the authors' ``{'model': state_dict}`` wrapper is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsIntegrityError(f"cannot read safetensors file {path}: {exc}") from exc
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        raise WeightsIntegrityError(
            f"cannot read {path} as a weights-only PyTorch checkpoint "
            f"(truncated, corrupted, or it holds code, which is never loaded): {load_failure(exc)}"
        ) from exc
    for wrapper in ("model", "state_dict", "params"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} holds no state dict of tensors")
    return obj


def load_failure(exc: BaseException) -> str:
    """torch.load's reason without its advice to retry with ``weights_only=False``: that would
    run whatever code the file holds, so we never suggest it."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    lines = [line.strip() for line in text.splitlines() if "weights_only" not in line]
    return " ".join(line for line in lines if line) or type(exc).__name__


CONFIG_FIELDS = {
    "architecture": "checked: must be exposure-slot",
    "level": "checked: must be the number of slot levels",
    "slot_counts": "checked against the weights",
    "width": "checked against the weights",
    "iterations": "used: slot-attention iterations",
    "trained_steps": "recorded by training, shown on model cards",
    "averaged_from": "recorded by scripts/average_weights.py",
    "averaged_steps": "recorded by scripts/average_weights.py",
}
"""Every field a ``config.json`` may have, and what is done with it; any other is refused."""

MAX_CONFIG_BYTES = 1 << 20
"""Largest ``config.json`` read (ours are a few hundred bytes)."""


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def read_config(folder: Path) -> NetConfig | None:
    """The ``config.json`` of a weights folder, or None if the folder has none.

    Every field is honoured or refused (see :data:`CONFIG_FIELDS`); a refusal is a
    WeightsError naming the file and the field.
    """
    path = folder / CONFIG_NAME
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise WeightsError(f"invalid {path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = json.loads(path.read_bytes(), parse_constant=_no_constant)
    except RecursionError:
        raise WeightsError(f"invalid {path}: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WeightsError(f"invalid {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise WeightsError(f"invalid {path}: not a JSON object")
    if unknown := sorted(set(data) - set(CONFIG_FIELDS)):
        raise WeightsError(
            f"invalid {path}: unknown field(s) {', '.join(unknown)} (known: "
            f"{', '.join(CONFIG_FIELDS)})"
        )
    counts = data.get("slot_counts")
    if not isinstance(counts, list):
        raise WeightsError(f"invalid {path}: slot_counts must be a list of ints, not {counts!r}")
    try:
        config = NetConfig(
            slot_counts=tuple(counts),
            width=data.get("width", NetConfig.width),
            iterations=data.get("iterations", NetConfig.iterations),
        )
    except WeightsError as exc:
        raise WeightsError(f"invalid {path}: {exc}") from exc
    if data.get("architecture", ARCHITECTURE) != ARCHITECTURE:
        raise WeightsError(
            f"invalid {path}: architecture {data['architecture']!r} is not {ARCHITECTURE!r}"
        )
    if data.get("level", config.level) != config.level:
        raise WeightsError(
            f"invalid {path}: level {data['level']!r} but {config.level} slot_counts"
        )
    return config


def inference_state(net: ExposureSlotNet, dtype: torch.dtype | None = None) -> StateDict:
    """The tensors inference needs (no slot decoder), contiguous, optionally cast."""
    state = {}
    for key, tensor in net.state_dict().items():
        if key.startswith("slot_decoder."):
            continue
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        state[key] = tensor.detach().cpu().contiguous()
    return state


def save_folder(
    net: ExposureSlotNet,
    folder: str | Path,
    *,
    dtype: torch.dtype | None = None,
    extra_config: Mapping[str, object] | None = None,
) -> Path:
    """Write ``model.safetensors`` (inference keys) and ``config.json`` into ``folder``;
    ``extra_config`` adds informational fields, which must be in :data:`CONFIG_FIELDS`."""
    if unknown := sorted(set(extra_config or {}) - set(CONFIG_FIELDS)):
        raise OptionError(
            f"extra_config field(s) {', '.join(unknown)} would make a config.json that "
            f"read_config refuses: add them to CONFIG_FIELDS first"
        )
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OptionError(f"cannot save weights into {folder}: it exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architecture": ARCHITECTURE,
        "level": net.config.level,
        **net.config.to_dict(),
        **(extra_config or {}),
    }
    # Written by us rather than safetensors' save_file, which creates files readable by
    # their owner only (0600): a shared or published folder should get the usual permissions.
    data = save(inference_state(net, dtype), metadata={"format": "pt"})
    (folder / WEIGHTS_NAME).write_bytes(data)
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def load_folder(folder: str | Path) -> ExposureSlotNet:
    """Load a folder written by :func:`save_folder` (or downloaded from the Hub): its
    ``config.json`` is read and checked first, then the weights against it."""
    folder = Path(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise WeightsNotFoundError(f"{folder} has no {WEIGHTS_NAME}")
    config = read_config(folder)
    try:
        return build_network(read_state_dict(weights), config)
    except WeightsError as exc:
        raise WeightsError(f"{folder}: {exc}") from exc
