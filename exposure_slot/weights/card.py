"""Hugging Face model cards (``README.md``) for Exposure-slot weights folders.

One generator for every set of weights we publish: ``exposure-slot convert`` fills in what a
checkpoint tells (level, slot counts, checksum), the maintainers add training data and
metrics for trained weights. The YAML front matter is written by ``huggingface_hub``'s
``ModelCardData``, so the Hub reads it as intended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCardData

from ..errors import OptionError, WeightsNotFoundError
from .convert import CONFIG_NAME, WEIGHTS_NAME, read_config, read_state_dict
from .hub import sha256_file

CARD_NAME = "README.md"

HUB_LICENCES = frozenset(
    {"apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-4.0",
     "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "gpl-3.0", "lgpl-3.0", "openrail"}
)  # fmt: skip
"""Licence identifiers the Hub knows and that we may meet; anything else is ``other``."""

TAGS = ("exposure-correction", "image-enhancement", "low-light-image-enhancement",
        "slot-attention", "pytorch", "safetensors")  # fmt: skip

LEVEL_NAMES = ("main", "sub", "sub-sub")

CITATION = """@inproceedings{jung2025exposureslot,
  title     = {Exposure-slot: Exposure-centric Representations Learning with Slot-in-Slot
               Attention for Region-aware Exposure Correction},
  author    = {Jung, Donggoo and Kim, Daehyun and Wang, Guanghui and Kim, Tae Hyun},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern
               Recognition (CVPR)},
  year      = {2025}
}"""

DEFAULT_LIMITATIONS = (
    "Trained for global and regional exposure errors of ordinary photographs (under-, over- "
    "and mixed exposure); it does not denoise, deblur, or recover highlights that are clipped "
    "in every channel.",
    "The network sees a whole image at once (its slots gather statistics over all pixels); "
    "results on crops can differ from results on the full photo.",
    "Colour is processed as 8/16-bit gamma-encoded RGB; there is no colour management beyond "
    "carrying the ICC profile through.",
    "Exposure is a matter of taste: the network reproduces the look of the retouched targets "
    "it was trained on.",
)


@dataclass(frozen=True)
class DataSource:
    """One training data set: its name, licence and where it comes from."""

    name: str
    licence: str
    url: str | None = None
    note: str = ""


@dataclass
class CardInfo:
    """Everything a model card says. Only ``name``, ``level``, ``slot_counts`` and
    ``sha256`` are required; :func:`card_info` fills those from a weights folder.

    ``metrics`` are table rows with shared keys, e.g. ``{"benchmark": "MSEC test",
    "PSNR": 23.1, "SSIM": 0.85}``; ``training_data`` items may be DataSource objects, dicts
    of its fields, or plain sentences (a manifest's ``training_data``); ``repo_id`` is used
    in the loading example.
    """

    name: str
    level: int
    slot_counts: Sequence[int]
    sha256: str
    licence: str | None = None
    description: str | None = None
    source: str | None = None
    repo_id: str | None = None
    parameters: int | None = None
    width: int | None = None
    training_data: Sequence[DataSource | Mapping[str, str] | str] = ()
    metrics: Sequence[Mapping[str, object]] = ()
    metrics_note: str | None = None
    limitations: Sequence[str] = ()
    tags: Sequence[str] = ()

    def __post_init__(self) -> None:
        self.slot_counts = tuple(int(n) for n in self.slot_counts)
        if len(self.slot_counts) != self.level:
            raise OptionError(
                f"model card: level {self.level} needs {self.level} slot counts, "
                f"got {list(self.slot_counts)}"
            )
        self.training_data = tuple(
            d if isinstance(d, (DataSource, str)) else DataSource(**d) for d in self.training_data
        )
        self.metrics, self.limitations, self.tags = (
            tuple(self.metrics),
            tuple(self.limitations),
            tuple(self.tags),
        )


def card_info(folder: str | Path, **overrides: Any) -> CardInfo:
    """A :class:`CardInfo` for a weights folder: level, slot counts, width, parameter count
    and sha256 read from its files, then ``overrides`` (any other CardInfo field)."""
    folder = Path(folder)
    weights = folder / WEIGHTS_NAME
    config = read_config(folder)
    if config is None:
        raise WeightsNotFoundError(f"{folder} has no {CONFIG_NAME}; write it with save_folder")
    state = read_state_dict(weights)
    values: dict[str, Any] = {
        "name": folder.name,
        "level": config.level,
        "slot_counts": config.slot_counts,
        "sha256": sha256_file(weights),
        "parameters": sum(t.numel() for t in state.values()),
        "width": config.width,
    }
    return CardInfo(**{**values, **overrides})


def hub_licence(licence: str | None) -> dict[str, str]:
    """Front-matter licence fields: a Hub identifier, or ``other`` with a ``license_name``
    made from the licence's first clause (``"unstated: ask the authors"`` → ``unstated``)."""
    if licence and licence.strip().lower() in HUB_LICENCES:
        return {"license": licence.strip().lower()}
    clause = re.split(r"[:;,(]", licence or "")[0].lower()
    words = "".join(c if c.isalnum() else " " for c in clause).split() or ["unknown"]
    return {"license": "other", "license_name": "-".join(words)[:64].strip("-")}


def model_card(info: CardInfo | Mapping[str, Any]) -> str:
    """The ``README.md`` of a weights folder: YAML front matter and the card sections."""
    if not isinstance(info, CardInfo):
        info = CardInfo(**info)
    front = ModelCardData(
        library_name="exposure-slot",
        pipeline_tag="image-to-image",
        tags=list(dict.fromkeys((*TAGS, *info.tags))),
        **hub_licence(info.licence),
    ).to_yaml()
    sections = [
        f"---\n{front}\n---",
        f"# {info.name}",
        _description(info),
        _architecture(info),
        _intended_use(),
        _training_data(info),
        _metrics(info),
        "## Limitations\n\n"
        + "\n".join(f"- {item}" for item in (*DEFAULT_LIMITATIONS, *info.limitations)),
        _how_to_load(info),
        "## Checksum\n\n"
        f"sha256 of `{WEIGHTS_NAME}`: `{info.sha256}`\n\n"
        f"Check a download with `sha256sum {WEIGHTS_NAME}`; `exposure-slot info --weights "
        "<this folder>` prints the same digest.",
        f"## Citation\n\nThe network is described in:\n\n```bibtex\n{CITATION}\n```",
    ]
    return "\n\n".join(sections) + "\n"


def write_card(folder: str | Path, info: CardInfo | Mapping[str, Any]) -> Path:
    """Write ``README.md`` into a weights folder; returns its path."""
    path = Path(folder) / CARD_NAME
    path.write_text(model_card(info), encoding="utf-8")
    return path


def _description(info: CardInfo) -> str:
    text = info.description or (
        "Weights of Exposure-slot, a network that corrects badly exposed photographs "
        "(too dark, too bright, or both in different regions) in a single pass."
    )
    lines = ["## Model description", "", text, "",
             "Exposure-slot (Jung et al., CVPR 2025) groups image features into exposure "
             "\"slots\" with slot attention, recursively: each main slot is split into sub-slots "
             "(slot-in-slot), so regions of different exposure are corrected differently. This "
             "file is for the independent PyTorch implementation in the `exposure-slot` "
             "package."]  # fmt: skip
    licence = info.licence or "not stated"
    lines += ["", f"Licence of these weights: {licence}."]
    if info.source:
        lines += ["", f"Source: {info.source}"]
    return "\n".join(lines)


def _architecture(info: CardInfo) -> str:
    names = (LEVEL_NAMES[i] if i < len(LEVEL_NAMES) else f"level {i}" for i in range(info.level))
    slots = ", ".join(f"{n} ({name})" for n, name in zip(info.slot_counts, names, strict=False))
    rows = [("level", str(info.level)), ("slots per level", slots)]
    if info.width is not None:
        rows.append(("base width", str(info.width)))
    if info.parameters is not None:
        rows.append(("parameters", f"{info.parameters:,}"))
    rows.append(("file", f"`{WEIGHTS_NAME}` (inference tensors) + `{CONFIG_NAME}`"))
    return "## Architecture\n\n" + _table(["property", "value"], rows)


def _intended_use() -> str:
    return (
        "## Intended use\n\n"
        "Correcting the exposure of photographs: batch processing of under- or over-exposed "
        "shots, a first automatic pass before manual editing, or a step in an image pipeline. "
        "Inputs are RGB images of any size (8 or 16 bits); outputs have the input's size. "
        "It is not meant for scientific or medical measurement, where pixel values must stay "
        "faithful to the scene."
    )


def _training_data(info: CardInfo) -> str:
    if not info.training_data:
        return (
            "## Training data\n\nNot stated for these weights. Check the licence of the data "
            "they were trained on before using them in a product."
        )
    rows = [
        (d.name if not d.url else f"[{d.name}]({d.url})", d.licence, d.note)
        for d in info.training_data
        if isinstance(d, DataSource)
    ]
    parts = [_table(["data set", "licence", "notes"], rows)] if rows else []
    parts += [d for d in info.training_data if isinstance(d, str)]
    return "## Training data\n\n" + "\n\n".join(parts)


def _metrics(info: CardInfo) -> str:
    if not info.metrics:
        return "## Metrics\n\nNo metrics were measured for these weights."
    columns = list(dict.fromkeys(key for row in info.metrics for key in row))
    rows = [tuple(_cell(row.get(c, "")) for c in columns) for row in info.metrics]
    text = "## Metrics\n\n" + _table(columns, rows)
    return text + (f"\n\n{info.metrics_note}" if info.metrics_note else "")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def _how_to_load(info: CardInfo) -> str:
    where = info.repo_id or "path/to/this/folder"
    return (
        "## How to use\n\n"
        "```bash\npip install exposure-slot\n"
        f"exposure-slot correct photo.jpg -o fixed.jpg --weights {where}\n```\n\n"
        "```python\nfrom PIL import Image\nfrom exposure_slot import ExposureCorrector\n\n"
        f"corrector = ExposureCorrector.from_pretrained({json.dumps(where)})\n"
        'fixed = corrector(Image.open("photo.jpg"))  # same type, size and mode as the input\n'
        'fixed.save("fixed.jpg")\n```'
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)
