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

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .batch import (
    RESULT_FIELDS,
    check_report_target,
    plan_options,
    result_row,
    write_corrected,
    write_report,
)
from .corrector import ExposureCorrector
from .errors import ExposureSlotError, OptionError
from .extras import require
from .files import DEFAULT_MAX_PIXELS, read_image, remove_stale_temp_files

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
        self.corrector.plan(np.zeros((8, 8, 3), np.float32), **plan_options(options))
        self.column = column
        self.options = options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.column not in batch:
            raise OptionError(f"the batch has no column {self.column!r}: {sorted(batch)}")
        images = list(batch[self.column])
        batch[self.column] = _stack(self.corrector(images, **self.options))
        return batch


class CorrectFiles:
    """A ``Dataset.map_batches`` stage over rows ``{"input", "output", "stat"}``: reads,
    corrects and writes each file as the command line does, and returns its result row.

    ``stat`` is the output's ``(inode, mtime_ns)`` when the job was planned (``""`` when there
    was none). An output that has changed since was written by an earlier attempt of the same
    job (Ray retries the batch of an actor that died): it is reported written, not written
    again. Subclass it to add per-batch behaviour.
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
        self.corrector.plan(np.zeros((8, 8, 3), np.float32), **plan_options(options))
        self.quality = quality
        self.max_pixels = max_pixels
        self.options = options

    def correct(self, source: Path, target: Path, planned: str) -> str:
        """Correct one file unless an earlier attempt did; returns the plan it ran with."""
        data = read_image(source, max_pixels=self.max_pixels)
        plan = str(self.corrector.plan(data.rgb, **plan_options(self.options)))
        if _stat(target) == planned:
            write_corrected(self.corrector, data, target, quality=self.quality, **self.options)
        return plan

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: dict[str, list[Any]] = {name: [] for name in RESULT_FIELDS}
        for source, target, planned in zip(
            batch["input"], batch["output"], batch["stat"], strict=True
        ):
            start = time.perf_counter()
            status, error, plan = "written", "", ""
            try:
                plan = self.correct(Path(source), Path(target), str(planned))
            except (ExposureSlotError, OSError) as exc:
                status, error = "failed", str(exc)
            row = result_row(source, target, status, error, start=start, plan=plan)
            for name in RESULT_FIELDS:
                rows[name].append(row[name])
        return {name: np.array(values) for name, values in rows.items()}


def _stat(path: Path) -> str:
    """``inode:mtime_ns`` of a file, or ``""`` when there is none: what changes on a write."""
    try:
        info = path.stat()
    except OSError:
        return ""
    return f"{info.st_ino}:{info.st_mtime_ns}"


def correct_files(
    inputs: Sequence[str],
    output: str | os.PathLike[str],
    *,
    recursive: bool = False,
    extension: str | None = None,
    suffix: str | None = None,
    overwrite: bool = False,
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
    (``exposure-slot correct``): an existing file exposure-slot did not write is never
    replaced unless ``overwrite``; ``skip_existing`` leaves existing outputs alone. Corrector
    ``options`` are ``mode``, ``strength`` .... ``actors`` correctors run at once, each with
    ``cpus_per_actor`` Ray CPUs and ``gpus_per_actor`` GPUs (1 on GPU nodes). Returns one
    row per input (see :data:`~exposure_slot.batch.RESULT_FIELDS`) in input order, and writes
    them to ``report`` (JSON Lines) when given.
    """
    from .batch import plan_jobs  # the command line's rules for inputs and outputs

    ray = _ray()
    if not isinstance(actors, int) or isinstance(actors, bool) or actors < 1:
        raise OptionError(f"actors must be a positive integer, not {actors!r}")
    if report is not None:
        check_report_target(Path(report))
    jobs = plan_jobs(
        list(inputs),
        Path(output),
        recursive=recursive,
        extension=extension,
        suffix=suffix,
        replace=overwrite,
        skip_existing=skip_existing,
    )
    for folder in {job.target.parent for job in jobs if job.target is not None}:
        remove_stale_temp_files(folder)
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        if job.problem is not None:
            rows[str(job.source)] = result_row(job.source, job.target, "failed", job.problem)
        elif skip_existing and job.target.exists():
            rows[str(job.source)] = result_row(job.source, job.target, "skipped")
        else:
            todo.append({"input": str(job.source), "output": str(job.target), "stat": ""})
            todo[-1]["stat"] = _stat(job.target)
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
        write_report(Path(report), ordered)
    return ordered


def _plain(value: Any) -> Any:
    """A numpy scalar from a Ray batch as a plain Python value (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value
