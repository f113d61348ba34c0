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

from ..errors import WeightsError, WeightsIntegrityError, WeightsNotFoundError
from ..network import ExposureSlotNet, NetConfig

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


def infer_config(state: Mapping[str, torch.Tensor]) -> NetConfig:
    """Read the hyperparameters of a state dict in our key names from tensor shapes."""
    counts = []
    prefix = "block.attn.slots."
    while f"{prefix}slots_mu" in state:
        counts.append(int(state[f"{prefix}slots_mu"].shape[1]))
        prefix += "child."
    if not counts:
        raise WeightsError("state dict has no slot levels")
    width = int(state["block.attn.slots.slots_mu"].shape[2]) // 4
    return NetConfig(slot_counts=tuple(counts), width=width)


def to_ours(state: Mapping[str, torch.Tensor]) -> StateDict:
    """A state dict in either format, in our key names."""
    state = dict(state)
    return authors_to_ours(state) if detect_format(state) == "authors" else state


def build_network(state: Mapping[str, torch.Tensor]) -> ExposureSlotNet:
    """Recognise, build and load a network from a state dict in either key format.

    Training-only tensors (the slot decoder) are loaded when present; every other key
    must match exactly, and a mismatch names the missing and unexpected keys.
    """
    state = to_ours(state)
    config = infer_config(state)
    has_decoder = any(k.startswith("slot_decoder.") for k in state)
    net = ExposureSlotNet(config, slot_decoder=has_decoder)
    expected = net.state_dict()
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


def read_config(folder: Path) -> NetConfig | None:
    """The ``config.json`` of a weights folder, or None if the folder has none."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return NetConfig(
            slot_counts=tuple(int(n) for n in data["slot_counts"]),
            width=int(data.get("width", 32)),
            iterations=int(data.get("iterations", 3)),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"invalid {path}: {exc}") from exc


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
    """Write ``model.safetensors`` (inference keys) and ``config.json`` into ``folder``."""
    folder = Path(folder)
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
    """Load a folder written by :func:`save_folder` (or downloaded from the Hub)."""
    folder = Path(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise WeightsNotFoundError(f"{folder} has no {WEIGHTS_NAME}")
    net = build_network(read_state_dict(weights))
    config = read_config(folder)
    if config is not None and config.slot_counts != net.config.slot_counts:
        raise WeightsError(
            f"{folder / CONFIG_NAME} says slots {list(config.slot_counts)} but the weights "
            f"have {list(net.config.slot_counts)}"
        )
    return net
