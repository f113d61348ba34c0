"""Sample photos that ship with the package, so a first run needs no photo of your own.

Each sample is a real photo, badly exposed as it was shot (not darkened by us), with its
licence recorded here and in ``sample_photos/CREDITS.md`` beside the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import OptionError


@dataclass(frozen=True)
class Sample:
    """A bundled photo: its file, what is wrong with it, and where it comes from."""

    name: str
    file: str
    caption: str
    source: str
    licence: str
    author: str


SAMPLES: dict[str, Sample] = {
    sample.name: sample
    for sample in (
        Sample(
            name="dim_bar",
            file="dim_bar.jpg",
            caption="dim bar, as shot",
            source="Debian package kphotoalbum 5.9.1-1, usr/share/kphotoalbum/demo/bar55_2.jpg "
            "(unchanged; a validation photo, never trained on)",
            licence="GPL-2+ (the package's copyright file; the demo photos have no separate "
            "statement)",
            author="Jesper K. Pedersen and the KPhotoAlbum authors",
        ),
    )
}
DEFAULT_SAMPLE = "dim_bar"


def sample_path(name: str = DEFAULT_SAMPLE) -> Path:
    """The file of the bundled sample photo ``name`` (see :data:`SAMPLES`)."""
    try:
        sample = SAMPLES[name]
    except (KeyError, TypeError):
        raise OptionError(
            f"no sample photo named {name!r}; bundled: {', '.join(sorted(SAMPLES))}"
        ) from None
    return Path(str(resources.files(__package__) / "sample_photos" / sample.file))
