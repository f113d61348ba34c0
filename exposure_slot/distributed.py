"""Correct photos on a Ray cluster: a Ray Data stage for images, and a whole files pipeline.

Needs the ``ray`` extra (``pip install "exposure-slot[ray]"``). Two entry points:

* :class:`CorrectImages`, a callable class for ``Dataset.map_batches``: each actor loads the
  corrector once and corrects the images of a column, returning them in the same dtype;
* :func:`correct_files`, the command line's job on a cluster: the same inputs, outputs and
  guarantees as ``exposure-slot correct`` (our own decoding and encoding, so metadata, bit
  depth and alpha are kept; atomic writes; a file we did not write is never replaced; one
  bad file does not stop the job), with one result row per input, optionally written as a
  JSON Lines report.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .corrector import ExposureCorrector
from .errors import ExposureSlotError, OptionError
from .extras import require
from .imageio import DEFAULT_MAX_PIXELS, read_image, write_image

RESULT_FIELDS = ("input", "output", "status", "error", "seconds")
"""The columns of a result row; ``status`` is "written", "skipped" or "failed"."""
CPUS_PER_ACTOR = 0.75
"""Ray CPUs each actor asks for: below one, so that actors on every core still leave Ray
room for its own read and bookkeeping tasks (a pool that takes every CPU can stall)."""


def _ray() -> Any:
    return require("ray", "ray")


def _stack(images: Sequence[np.ndarray]) -> np.ndarray:
    """A batch column: one array when every image has the same shape, else an object array."""
    if len({(a.shape, a.dtype) for a in images}) == 1:
        return np.stack(images)
    column = np.empty(len(images), dtype=object)
    column[:] = list(images)
    return column


class CorrectImages:
    """A ``Dataset.map_batches`` stage that corrects the images in ``column``.

    The corrector is loaded once per actor (``weights``, ``device``, ``dtype``); ``options``
    are what :meth:`ExposureCorrector.__call__` takes (``mode``, ``proxy_size`` ...). Images
    come back in their own dtype and shape; other columns pass through.
    """

    def __init__(
        self,
        weights: Any = "default",
        *,
        device: str | None = None,
        dtype: str | None = None,
        column: str = "image",
        **options: Any,
    ):
        self.corrector = ExposureCorrector(weights, device=device, dtype=dtype)
        self.corrector.plan(np.zeros((8, 8, 3), np.float32), **options)  # bad options fail here
        self.column = column
        self.options = options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.column not in batch:
            raise OptionError(f"the batch has no column {self.column!r}: {sorted(batch)}")
        images = list(batch[self.column])
        batch[self.column] = _stack(self.corrector(images, **self.options))
        return batch


class CorrectFiles:
    """A ``Dataset.map_batches`` stage over rows ``{"input", "output"}``: reads, corrects and
    writes each file as the command line does, and returns one result row per input.

    An output that exists when its row runs was written by an earlier attempt of the same
    job (the plan left out every output that existed before): it is reported written, not
    written twice. Subclass it to add per-batch behaviour.
    """

    def __init__(
        self,
        weights: Any = "default",
        *,
        device: str | None = None,
        dtype: str | None = None,
        quality: int | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        **options: Any,
    ):
        self.corrector = ExposureCorrector(weights, device=device, dtype=dtype)
        self.corrector.plan(np.zeros((8, 8, 3), np.float32), **options)
        self.quality = quality
        self.max_pixels = max_pixels
        self.options = options

    def correct(self, source: Path, target: Path) -> str:
        """Correct one file; returns its status."""
        if target.exists():
            return "written"
        data = read_image(source, max_pixels=self.max_pixels)
        fixed = self.corrector(data.rgb, **self.options)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_image(target, fixed, like=data, quality=self.quality)
        return "written"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: dict[str, list[Any]] = {name: [] for name in RESULT_FIELDS}
        for source, target in zip(batch["input"], batch["output"], strict=True):
            start = time.perf_counter()
            try:
                status, error = self.correct(Path(source), Path(target)), ""
            except (ExposureSlotError, OSError) as exc:
                status, error = "failed", str(exc)
            for name, value in zip(
                RESULT_FIELDS,
                (source, target, status, error, time.perf_counter() - start),
                strict=True,
            ):
                rows[name].append(value)
        return {name: np.array(values) for name, values in rows.items()}


def correct_files(
    inputs: Sequence[str],
    output: str | os.PathLike[str],
    *,
    recursive: bool = False,
    extension: str | None = None,
    suffix: str | None = None,
    skip_existing: bool = False,
    weights: Any = "default",
    device: str | None = None,
    dtype: str | None = None,
    quality: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    actors: int = 1,
    cpus_per_actor: float = CPUS_PER_ACTOR,
    gpus_per_actor: float = 0,
    report: str | os.PathLike[str] | None = None,
    worker: type[CorrectFiles] = CorrectFiles,
    **options: Any,
) -> list[dict[str, Any]]:
    """Correct files on the Ray cluster this process is connected to (``ray.init``).

    Inputs, ``output`` and the planning options mean what they mean on the command line
    (``exposure-slot correct``); ``options`` go to the corrector (``mode``, ...). ``actors``
    correctors run at once, each with ``cpus_per_actor`` Ray CPUs and ``gpus_per_actor``
    GPUs (1 on GPU nodes). Returns one row per input (see :data:`RESULT_FIELDS`), in input
    order, and writes them to ``report`` (JSON Lines) when given.
    """
    from .cli import plan_jobs  # the command line's rules for inputs and outputs

    ray = _ray()
    if not isinstance(actors, int) or isinstance(actors, bool) or actors < 1:
        raise OptionError(f"actors must be a positive integer, not {actors!r}")
    jobs = plan_jobs(
        list(inputs), Path(output), recursive=recursive, extension=extension, suffix=suffix
    )
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        row = {"input": str(job.source), "output": str(job.target or ""), "error": "", "seconds": 0}
        if job.problem is not None:
            rows[row["input"]] = {**row, "status": "failed", "error": job.problem}
        elif job.target.exists() and skip_existing:
            rows[row["input"]] = {**row, "status": "skipped"}
        elif job.target.exists():
            rows[row["input"]] = {
                **row,
                "status": "failed",
                "error": f"{job.target} exists (use --skip-existing to leave it)",
            }
        else:
            todo.append({"input": row["input"], "output": row["output"]})
    if todo:
        dataset = ray.data.from_items(todo, override_num_blocks=len(todo))
        results = dataset.map_batches(
            worker,
            fn_constructor_kwargs={
                "weights": weights,
                "device": device,
                "dtype": dtype,
                "quality": quality,
                "max_pixels": max_pixels,
                **options,
            },
            compute=ray.data.ActorPoolStrategy(size=actors),
            batch_size=1,
            num_cpus=cpus_per_actor,
            num_gpus=gpus_per_actor,
        ).take_all()  # Ray restarts a dead actor and retries its batch (its defaults)
        for result in results:
            rows[str(result["input"])] = {name: _plain(result[name]) for name in RESULT_FIELDS}
    ordered = [rows[str(job.source)] for job in jobs]
    if report is not None:
        _write_report(Path(report), ordered)
    return ordered


def _plain(value: Any) -> Any:
    """A numpy scalar from a Ray batch as a plain Python value (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def _write_report(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
