"""Weights: where they come from (bundled, file, folder, Hub), checked, loaded.

:func:`load_weights` turns anything a user may pass as ``weights=`` into a network and
a :class:`WeightsInfo` describing it (shown by ``exposure-slot info``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import OptionError, WeightsIntegrityError, WeightsNotFoundError
from ..network import ExposureSlotNet
from .card import CARD_NAME, CardInfo, card_info, write_card
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
    "HUB_OPTIONS",
    "WEIGHTS_NAME",
    "Manifest",
    "WeightsEntry",
    "WeightsInfo",
    "convert_checkpoint",
    "load_manifest",
    "load_weights",
    "save_folder",
    "sha256_file",
]

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HUB_OPTIONS = frozenset({"revision", "cache_dir", "token", "local_files_only", "force_download"})
"""Keyword arguments passed on to the Hub download (ignored for local files and folders)."""


@dataclass(frozen=True)
class WeightsInfo:
    """Where the weights in use came from, for ``info`` and model cards."""

    name: str
    source: str
    sha256: str | None = None
    licence: str | None = None
    level: int | None = None


def _check_bundled(entry: WeightsEntry) -> Path:
    """The bundled folder of ``entry``, after checking each listed file's size and sha256."""
    folder = entry.bundled_path
    if folder is None:
        raise WeightsNotFoundError(
            f"weights '{entry.name}' are bundled, but the manifest was not read from a file, "
            "so there is no folder to find them in: use load_manifest(path)"
        )
    for filename, spec in entry.files.items():
        path = folder / filename
        problem = None
        if not path.is_file():
            problem = "is missing"
        elif (size := path.stat().st_size) != spec["size"]:
            problem = f"has {size} bytes, the manifest says {spec['size']} (truncated or replaced)"
        elif (digest := sha256_file(path)) != spec["sha256"]:
            problem = f"has sha256 {digest}, the manifest says {spec['sha256']} (corrupted)"
        if problem:
            raise WeightsIntegrityError(
                f"weights '{entry.name}': {path} {problem}; nothing was loaded. Reinstall "
                "exposure-slot, or pass weights=<file, folder or Hub repo id>"
            )
    return folder


def _from_entry(entry: WeightsEntry, hub_kwargs: Mapping[str, Any]) -> Path:
    """The verified folder holding ``entry``'s files (bundled, or downloaded and cached)."""
    if entry.bundled is not None:
        return _check_bundled(entry)
    if entry.repo_id is not None:
        options = {"revision": entry.revision, **hub_kwargs}
        hashes = {name: spec["sha256"] for name, spec in entry.files.items()}
        files = download_files(entry.repo_id, list(entry.files), sha256=hashes, **options)
        return files[WEIGHTS_NAME].parent
    raise WeightsNotFoundError(
        f"weights '{entry.name}' cannot be downloaded automatically: {entry.how_to_get} "
        f"(published at {entry.published_at}; licence: {entry.licence})"
    )


def _from_hub(repo_id: str, hub_kwargs: Mapping[str, Any]) -> Path:
    """Download (or take from the cache) a Hub repo's weights folder."""
    try:
        files = download_files(repo_id, [CONFIG_NAME, WEIGHTS_NAME], **hub_kwargs)
    except WeightsNotFoundError as exc:
        raise WeightsNotFoundError(
            f"{exc} (and there is no local file or folder '{repo_id}')"
        ) from exc
    return files[WEIGHTS_NAME].parent


def load_weights(
    source: str | Path | ExposureSlotNet | Mapping[str, torch.Tensor] = "default",
    *,
    manifest: str | os.PathLike[str] | Manifest | None = None,
    **hub_kwargs: Any,
) -> tuple[ExposureSlotNet, WeightsInfo]:
    """Resolve ``source`` and build the network it describes.

    ``source`` is one of: ``"default"`` or another name in the manifest; a ``.pth``/``.pt``/
    ``.safetensors`` file (authors' or our keys); a folder with ``model.safetensors`` and
    ``config.json``; a Hub repo id ``"org/name"``; a network; or a state dict. A local file
    or folder wins over a Hub repo of the same name. ``hub_kwargs`` (``revision``,
    ``cache_dir``, ``token``, ``local_files_only``, ``force_download``) go to the download.
    ``manifest`` replaces the shipped manifest (a path or a :class:`Manifest`).

    Files are only ever read as safetensors or through ``torch.load(weights_only=True)``;
    named weights are checked against the manifest's sha256 and size before they are read.
    """
    if unknown := sorted(set(hub_kwargs) - HUB_OPTIONS):
        raise OptionError(
            f"unknown weights option(s) {', '.join(unknown)}: use {', '.join(sorted(HUB_OPTIONS))}"
        )
    if isinstance(source, ExposureSlotNet):
        return source.eval(), WeightsInfo(name="(network object)", source="in memory")
    if isinstance(source, Mapping):
        net = build_network(source)
        return net, WeightsInfo(name="(state dict)", source="in memory", level=net.config.level)
    if not isinstance(source, (str, Path)):
        raise OptionError(
            "weights must be a name (e.g. 'default'), a path, a Hub repo id, a network or a "
            f"state dict, not {type(source).__name__}"
        )
    path = Path(source).expanduser()
    text = str(source)
    if path.is_dir():
        net = load_folder(path)
        digest = sha256_file(path / WEIGHTS_NAME)
        return net, WeightsInfo(path.name, str(path), digest, level=net.config.level)
    if path.is_file():
        net = build_network(read_state_dict(path))
        return net, WeightsInfo(path.name, str(path), sha256_file(path), level=net.config.level)
    names = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    if text == "default" or text in names.entries:
        entry = names.get(text)
        folder = _from_entry(entry, hub_kwargs)
        net = load_folder(folder)
        info = WeightsInfo(
            entry.name, str(folder), entry.sha256(WEIGHTS_NAME), entry.licence, net.config.level
        )
        return net, info
    if _REPO_ID.match(text) and not path.suffix:
        folder = _from_hub(text, hub_kwargs)
        net = load_folder(folder)
        digest = sha256_file(folder / WEIGHTS_NAME)
        return net, WeightsInfo(text, f"hf://{text}", digest, level=net.config.level)
    raise WeightsNotFoundError(
        f"cannot find weights '{text}': not a file, not a folder, not a name in "
        f"{names.source} ({', '.join(sorted(names.entries))}) and not a Hub repo id like "
        "'org/name'"
    )


def convert_checkpoint(
    source: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    licence: str | None = None,
    repo_id: str | None = None,
    manifest: str | os.PathLike[str] | Manifest | None = None,
) -> CardInfo:
    """Write a Hub-ready folder for ``source`` (typically an authors' ``.pth``).

    ``out_dir`` gets ``model.safetensors`` (inference tensors, float32, our key names),
    ``config.json`` and a ``README.md`` model card. A file named like one of the authors'
    checkpoints in the manifest (``SICE_level2.pth`` ...) gets that entry's licence
    statement, training data and description unless ``licence`` is given. Everything is
    written to a temporary folder next to ``out_dir`` first, so a failure leaves ``out_dir``
    as it was; other files in ``out_dir`` are left alone. Returns what the card says.
    """
    from .. import __version__  # the package's __init__ imports this module first

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OptionError(f"cannot convert into {out}: it exists and is not a folder")
    names = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    net, info = load_weights(source, manifest=names)
    known = next(
        (
            e
            for e in names.entries.values()
            if e.published_file == Path(str(source)).name and e.level == net.config.level
        ),
        None,
    )
    origin = f"{known.published_at}, file {known.published_file}" if known else info.source
    details = {
        "name": name or out.resolve().name,
        "licence": licence or (known.licence if known else info.licence),
        "source": f"converted by exposure-slot {__version__} from {origin} "
        f"(sha256 of the original: {info.sha256 or 'not a file'})",
        "repo_id": repo_id,
    }
    if known:
        details |= {"description": known.description, "training_data": [known.training_data]}
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_folder(net, scratch, dtype=torch.float32)
        card = card_info(scratch, **details)
        write_card(scratch, card)
        out.mkdir(exist_ok=True)
        for filename in (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME):
            os.replace(scratch / filename, out / filename)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return card
