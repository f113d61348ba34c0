"""Weights: where they come from (bundled, file, folder, Hub), checked, loaded.

:func:`load_weights` turns anything a user may pass as ``weights=`` into a network and
a :class:`WeightsInfo` describing it (shown by ``exposure-slot info``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsIntegrityError, WeightsNotFoundError
from ..network import ExposureSlotNet
from .convert import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    build_network,
    load_folder,
    read_state_dict,
    save_folder,
)
from .hub import download_files, sha256_file
from .manifest import Manifest, WeightsEntry, load_manifest

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "Manifest",
    "WeightsEntry",
    "WeightsInfo",
    "load_manifest",
    "load_weights",
    "save_folder",
    "sha256_file",
]

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class WeightsInfo:
    """Where the weights in use came from, for ``info`` and model cards."""

    name: str
    source: str
    sha256: str | None = None
    licence: str | None = None
    level: int | None = None


def _verify(path: Path, expected: str | None) -> str:
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        raise WeightsIntegrityError(
            f"sha256 of {path} is {actual}, the manifest expects {expected}: the file is "
            "corrupted or not the published one; nothing was loaded"
        )
    return actual


def _from_entry(entry: WeightsEntry, hub_kwargs: Mapping[str, Any]) -> tuple[Path, str]:
    if entry.bundled_path is not None:
        folder = entry.bundled_path
        digest = _verify(folder / WEIGHTS_NAME, entry.sha256(WEIGHTS_NAME))
        return folder, digest
    if entry.repo_id is not None:
        hashes = {f: h for f in (WEIGHTS_NAME, CONFIG_NAME) if (h := entry.sha256(f))}
        files = download_files(
            entry.repo_id,
            [CONFIG_NAME, WEIGHTS_NAME],
            revision=hub_kwargs.pop("revision", entry.revision),
            sha256=hashes,
            **hub_kwargs,
        )
        return files[WEIGHTS_NAME].parent, _verify(files[WEIGHTS_NAME], None)
    raise WeightsNotFoundError(
        f"weights '{entry.name}' cannot be downloaded automatically: {entry.how_to_get} "
        f"(published at {entry.published_at}; licence: {entry.licence})"
    )


def load_weights(
    source: str | Path | ExposureSlotNet | Mapping[str, torch.Tensor] = "default",
    **hub_kwargs: Any,
) -> tuple[ExposureSlotNet, WeightsInfo]:
    """Resolve ``source`` and build the network it describes.

    ``source`` is one of: ``"default"`` or another manifest name; a ``.pth``/``.pt``/
    ``.safetensors`` file (authors' or our keys); a folder with ``model.safetensors`` and
    ``config.json``; a Hub repo id ``"org/name"`` (``hub_kwargs``: ``revision``,
    ``cache_dir``, ``token``, ``local_files_only``, ``force_download``); a network; or a
    state dict.
    """
    if isinstance(source, ExposureSlotNet):
        return source.eval(), WeightsInfo(name="(network object)", source="in memory")
    if isinstance(source, Mapping):
        net = build_network(source)
        return net, WeightsInfo(name="(state dict)", source="in memory", level=net.config.level)
    if not isinstance(source, (str, Path)):
        raise TypeError(
            f"weights must be a name, path, Hub repo id, network or state dict, "
            f"not {type(source).__name__}"
        )
    path = Path(source).expanduser()
    text = str(source)
    if path.is_dir():
        net = load_folder(path)
        digest = _verify(path / WEIGHTS_NAME, None)
        return net, WeightsInfo(path.name, str(path), digest, level=net.config.level)
    if path.is_file():
        net = build_network(read_state_dict(path))
        digest = _verify(path, None)
        return net, WeightsInfo(path.name, str(path), digest, level=net.config.level)
    manifest = load_manifest()
    if text == "default" or text in manifest.entries:
        entry = manifest.get(text)
        folder, digest = _from_entry(entry, dict(hub_kwargs))
        net = load_folder(folder)
        return net, WeightsInfo(entry.name, str(folder), digest, entry.licence, net.config.level)
    if _REPO_ID.match(text) and not path.suffix:
        files = download_files(text, [CONFIG_NAME, WEIGHTS_NAME], **hub_kwargs)
        folder = files[WEIGHTS_NAME].parent
        net = load_folder(folder)
        digest = _verify(files[WEIGHTS_NAME], None)
        return net, WeightsInfo(text, f"hf://{text}", digest, level=net.config.level)
    raise WeightsNotFoundError(
        f"cannot find weights '{text}': not a file, not a folder, not a name in the manifest "
        f"({', '.join(sorted(manifest.entries))}) and not a Hub repo id like 'org/name'"
    )
