"""The weights manifest: named weights as data (files, hashes, licence, metrics).

``weights_manifest.json`` ships inside the package (the repository's top-level file is a
link to it). Each entry says where its files live: bundled in the package, on the Hub at a
pinned revision, or (for the authors' checkpoints) only at the authors' own download page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import WeightsNotFoundError

MANIFEST_NAME = "weights_manifest.json"


@dataclass(frozen=True)
class WeightsEntry:
    """One named set of weights in the manifest."""

    name: str
    level: int
    licence: str
    description: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    bundled: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    training_data: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    published_at: str | None = None
    how_to_get: str | None = None

    def sha256(self, filename: str) -> str | None:
        """The pinned sha256 of one of the entry's files, if the manifest knows it."""
        return self.files.get(filename, {}).get("sha256")

    @property
    def bundled_path(self) -> Path | None:
        """Folder of bundled weights inside the installed package, if any."""
        if self.bundled is None:
            return None
        return Path(str(resources.files("exposure_slot").joinpath(self.bundled)))


@dataclass(frozen=True)
class Manifest:
    """All named weights, and the name used by ``weights="default"``."""

    default: str | None
    entries: dict[str, WeightsEntry]

    def get(self, name: str) -> WeightsEntry:
        """The entry called ``name`` (``"default"`` gives the default entry)."""
        if name == "default":
            if self.default is None:
                raise WeightsNotFoundError(
                    "no default weights are bundled with this version of exposure-slot; "
                    "pass weights=<file, folder or Hub repo id>"
                )
            name = self.default
        if name not in self.entries:
            known = ", ".join(sorted(self.entries)) or "none"
            raise WeightsNotFoundError(
                f"no weights called '{name}' in the manifest (known: {known})"
            )
        return self.entries[name]


def parse_manifest(data: dict[str, Any]) -> Manifest:
    """Build a :class:`Manifest` from the decoded JSON."""
    entries = {
        name: WeightsEntry(name=name, **fields) for name, fields in data.get("weights", {}).items()
    }
    return Manifest(default=data.get("default"), entries=entries)


@cache
def load_manifest() -> Manifest:
    """The manifest shipped with the installed package."""
    text = resources.files("exposure_slot").joinpath(MANIFEST_NAME).read_text()
    return parse_manifest(json.loads(text))
