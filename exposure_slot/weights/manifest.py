"""The weights manifest: named weights as data (files, hashes, licence, metrics).

``weights_manifest.json`` ships inside the package (the repository's top-level file is a
link to it). Each entry says where its files live, in exactly one of three ways:

* ``bundled``: a folder inside the package (relative to the manifest's own folder);
* ``repo_id`` + ``revision``: a Hugging Face Hub repo pinned to a 40-hex commit (an entry
  may have both; the bundled copy is then used and the Hub repo is its public home);
* ``published_at`` + ``how_to_get`` (+ ``published_file``): weights we may not redistribute
  (the authors' checkpoints), described so that a user can fetch and convert them.

Bundled and Hub entries list ``files`` with the sha256 and size of each, checked before
every use (bundled) or after every download and cache hit (Hub).

A manifest is checked when it is read: a typo or a missing hash is an error then, not a
surprise at download time. ``load_manifest(path)`` reads another manifest file (an
organisation's own list of weights); its ``bundled`` folders are relative to that file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import WeightsError, WeightsNotFoundError

MANIFEST_NAME = "weights_manifest.json"
SCHEMA = 1
REQUIRED_FILE = "model.safetensors"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_TEXT_FIELDS = ("description", "training_data", "published_at", "published_file", "how_to_get",
                "bundled", "repo_id", "revision")  # fmt: skip


@dataclass(frozen=True)
class WeightsEntry:
    """One named set of weights in the manifest (see the module notes for the three kinds)."""

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
    published_file: str | None = None
    how_to_get: str | None = None
    root: Path | None = field(default=None, compare=False, repr=False)
    """Folder that ``bundled`` is relative to (the manifest's folder)."""

    def sha256(self, filename: str) -> str | None:
        """The pinned sha256 of one of the entry's files, if the manifest knows it."""
        return self.files.get(filename, {}).get("sha256")

    @property
    def bundled_path(self) -> Path | None:
        """Folder of bundled weights (inside the installed package for the shipped manifest)."""
        if self.bundled is None or self.root is None:
            return None
        return self.root / self.bundled


@dataclass(frozen=True)
class Manifest:
    """All named weights, and the name used by ``weights="default"``."""

    default: str | None
    entries: dict[str, WeightsEntry]
    source: str = MANIFEST_NAME

    def get(self, name: str) -> WeightsEntry:
        """The entry called ``name`` (``"default"`` gives the default entry)."""
        if name == "default":
            if self.default is None:
                raise WeightsNotFoundError(
                    f"{self.source} names no default weights; "
                    "pass weights=<file, folder, name or Hub repo id>"
                )
            name = self.default
        if name not in self.entries:
            known = ", ".join(sorted(self.entries)) or "none"
            raise WeightsNotFoundError(
                f"no weights called '{name}' in {self.source} (known: {known})"
            )
        return self.entries[name]


def parse_manifest(data: Any, root: Path | None = None, source: str = MANIFEST_NAME) -> Manifest:
    """Check decoded manifest JSON and build a :class:`Manifest`.

    ``root`` is the folder ``bundled`` paths are relative to; ``source`` names the manifest
    in error messages. Raises :class:`WeightsError` naming the entry and field at fault.
    """

    def fail(message: str) -> WeightsError:
        return WeightsError(f"invalid weights manifest {source}: {message}")

    if not isinstance(data, dict) or not isinstance(data.get("weights"), dict):
        raise fail('expected a JSON object with a "weights" object')
    if data.get("schema") != SCHEMA:
        raise fail(f"schema {data.get('schema')!r} is not supported (this version reads {SCHEMA})")
    unknown = sorted(set(data) - {"schema", "default", "weights"})
    if unknown:
        raise fail(f"unknown top-level keys {unknown}")
    entries = {}
    for name, values in data["weights"].items():
        problem = _entry_problem(values)
        if problem:
            raise fail(f"entry '{name}': {problem}")
        entries[name] = WeightsEntry(name=name, root=root, **values)
    default = data.get("default")
    if default is not None and default not in entries:
        raise fail(f"default '{default}' is not an entry")
    return Manifest(default=default, entries=entries, source=source)


def _entry_problem(values: Any) -> str | None:
    """What is wrong with one manifest entry, or None."""
    if not isinstance(values, dict):
        return "must be a JSON object"
    allowed = {f.name for f in fields(WeightsEntry)} - {"name", "root"}
    if unknown := sorted(set(values) - allowed):
        return f"unknown keys {unknown} (known: {sorted(allowed)})"
    if not isinstance(values.get("level"), int) or values["level"] < 1:
        return '"level" must be a positive integer'
    if not isinstance(values.get("licence"), str) or not values["licence"].strip():
        return '"licence" must be stated (write "unstated" and why, if it is)'
    for key in _TEXT_FIELDS:
        if key in values and not isinstance(values[key], str):
            return f'"{key}" must be a string'
    if not isinstance(values.get("metrics", {}), dict):
        return '"metrics" must be an object'
    if "published_at" in values:
        if {"bundled", "repo_id", "files"} & set(values):
            return '"published_at" (weights not distributed by us) excludes the other sources'
        return None if "how_to_get" in values else '"published_at" needs "how_to_get"'
    if "bundled" not in values and "repo_id" not in values:
        return 'needs "bundled", "repo_id" (or both), or "published_at"'
    if "repo_id" in values and not _COMMIT.fullmatch(values.get("revision", "")):
        return '"revision" must pin a 40-hex commit sha of the Hub repo'
    return _files_problem(values.get("files"))


def _files_problem(files: Any) -> str | None:
    if not isinstance(files, dict) or REQUIRED_FILE not in files:
        return f'"files" must list at least {REQUIRED_FILE} with its sha256 and size'
    for filename, spec in files.items():
        if not isinstance(spec, dict) or set(spec) != {"sha256", "size"}:
            return f'file "{filename}" needs exactly "sha256" and "size"'
        if not isinstance(spec["sha256"], str) or not _SHA256.fullmatch(spec["sha256"]):
            return f'file "{filename}": "sha256" must be 64 lower-case hex digits'
        if not isinstance(spec["size"], int) or spec["size"] < 0:
            return f'file "{filename}": "size" must be a byte count'
    return None


def load_manifest(path: str | os.PathLike[str] | None = None) -> Manifest:
    """The manifest shipped with the package, or the manifest file at ``path``."""
    if path is None:
        return _package_manifest()
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WeightsNotFoundError(f"no weights manifest at {path}") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WeightsError(f"cannot read weights manifest {path}: {exc}") from exc
    return parse_manifest(data, root=path.resolve().parent, source=str(path))


@cache
def _package_manifest() -> Manifest:
    package = resources.files("exposure_slot")
    data = json.loads(package.joinpath(MANIFEST_NAME).read_text(encoding="utf-8"))
    return parse_manifest(data, root=Path(str(package)))
