"""Correcting files: one photo file into another, or many, keeping what the command line keeps.

:func:`correct_file` is the one-call way from Python for one photo, :func:`correct_files`
for files, folders and glob patterns (the command line's ``exposure-slot correct``: the same
planning, prefetching, per-file failures and result rows). The command line, the Ray stage
and the web app write each result through :func:`write_corrected`, so every door keeps the
same things: the pixels upright (EXIF orientation applied), the ICC profile, EXIF and XMP, the
bit depth, grayscale and alpha, and exposure-slot's mark (see :func:`files.is_our_output`).
"""

from __future__ import annotations

import fnmatch
import glob
import json
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ExposureSlotError, ImageWriteError, OptionError
from .files import (
    DEFAULT_MAX_PIXELS,
    READABLE_EXTENSIONS,
    WRITABLE_EXTENSIONS,
    ImageData,
    atomic_write_bytes,
    is_our_output,
    read_image,
    remove_stale_temp_files,
    to_uint,
    write_image,
)

if TYPE_CHECKING:
    from .corrector import ExposureCorrector
    from .threads import ThreadPolicy

SAME_FOLDER_SUFFIX = "_corrected"
"""Stem suffix used when an output lands in its input's own folder and no suffix is given."""
OTHER_IMAGE_EXTENSIONS = frozenset({".heic", ".heif", ".jxl", ".dng", ".raw"})
"""Image extensions we neither read nor write: an output ending so is a mistake, not a folder."""
_ALLOCATION_FAILURES = (
    "can't allocate memory",
    "DefaultCPUAllocator",
    "out of memory",
    "could not create a primitive",
)
"""Texts of torch's RuntimeError when an allocation fails (CPU allocator, CUDA, oneDNN)."""

UINT8_MODES = ("RGB", "RGBA")
"""Pillow modes of 8-bit photos whose result is written as the corrector's uint8 samples."""

log = logging.getLogger(__name__)


def write_corrected(
    corrector: ExposureCorrector,
    data: ImageData,
    target: Path,
    *,
    quality: int | None = None,
    **options: Any,
) -> None:
    """Correct a decoded photo and write it to ``target`` like its source (folders made);
    ``options`` are the corrector's (``mode``, ``strength`` ...).

    An 8-bit RGB(A) photo goes to the corrector as its uint8 samples, so that fast mode takes
    its 8-bit path (strips, no full-size float copies); the result is what the library gives
    for those samples. Other photos stay float: their result is converted when written
    (grey, palette, CMYK, 16 bits), and quantising first would round twice.
    """
    as_uint8 = data.bit_depth == 8 and data.mode in UINT8_MODES
    fixed = corrector(to_uint(data.rgb, 8) if as_uint8 else data.rgb, **options)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_image(target, fixed, like=data, quality=quality)


def correct_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    corrector: ExposureCorrector | None = None,
    *,
    overwrite: bool = False,
    quality: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    **options: Any,
) -> Path:
    """Correct the photo file ``source`` into ``target`` (format from its extension).

    ``corrector`` defaults to a new ``ExposureCorrector()`` (pass one when correcting many
    files). ``target`` may be an earlier result of exposure-slot; any other existing file is
    only replaced with ``overwrite=True``, and ``source`` itself never. ``options`` go to the
    corrector (``mode``, ``strength`` ...). Returns ``target``.
    """
    source, target = Path(source), Path(target)
    if target.exists():
        if source.exists() and os.path.samefile(source, target):
            raise ImageWriteError(f"refusing to write {target} over its own input")
        if not overwrite and not is_our_output(target):
            raise ImageWriteError(
                f"refusing to replace {target}, which exposure-slot did not write "
                "(overwrite=True replaces it)"
            )
    if corrector is None:
        from .corrector import ExposureCorrector

        corrector = ExposureCorrector()
    data = read_image(source, max_pixels=max_pixels)
    write_corrected(corrector, data, target, quality=quality, **options)
    return target


def correct_files(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    corrector: ExposureCorrector | None = None,
    *,
    recursive: bool = False,
    extension: str | None = None,
    suffix: str | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    quality: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    threads: ThreadPolicy | None = None,
    workers: int = 1,
    report: str | os.PathLike[str] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Correct files, folders and glob patterns into ``output``, as ``exposure-slot correct``.

    ``output`` is a file name (one input file) or a folder (see :func:`plan_jobs` for the
    names, and for what is refused). ``corrector`` defaults to a new ``ExposureCorrector()``;
    ``options`` go to it (``mode``, ``strength`` ...); ``threads`` and ``workers`` are
    :func:`run_jobs`'s. One bad file does not stop the others.
    Returns one row per input (see :data:`RESULT_FIELDS`): ``status`` is written, skipped or
    failed, ``error`` says why a file failed. ``report`` also gets them as JSON Lines.
    """
    report_path = None if report is None else Path(report)
    if report_path is not None:
        check_report_target(report_path)
    jobs = plan_jobs(
        [os.fspath(i) for i in inputs],
        Path(output),
        recursive=recursive,
        extension=extension,
        suffix=suffix,
        replace=overwrite,
        skip_existing=skip_existing,
    )
    if corrector is None:
        from .corrector import ExposureCorrector

        corrector = ExposureCorrector()
    return run_jobs(
        jobs,
        corrector,
        quality=quality,
        max_pixels=max_pixels,
        skip_existing=skip_existing,
        threads=threads,
        workers=workers,
        report=report_path,
        **options,
    )


RESULT_FIELDS = ("input", "output", "status", "error", "seconds", "plan")
"""The fields of a report line: one per input, from the command line and the Ray stage."""
STATUSES = ("written", "skipped", "failed")
"""The values of a report line's ``status``."""


def plan_options(options: dict[str, Any]) -> dict[str, Any]:
    """The corrector options that :meth:`ExposureCorrector.plan` takes (all but strength)."""
    return {key: value for key, value in options.items() if key != "strength"}


def result_row(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str] | None,
    status: str,
    error: str = "",
    *,
    start: float | None = None,
    plan: str = "",
) -> dict[str, Any]:
    """One input's report line; ``start`` is the ``time.perf_counter()`` its work began."""
    seconds = 0.0 if start is None else round(time.perf_counter() - start, 3)
    output = "" if target is None else str(target)
    values = (str(source), output, status, error, seconds, plan)
    return dict(zip(RESULT_FIELDS, values, strict=True))


def check_report_target(path: Path) -> None:
    """Refuse a report path that holds anything but an earlier report (never replace a file
    we did not write), or that is a folder."""
    if path.is_dir():
        raise ImageWriteError(f"--report {path} is a folder")
    if not path.exists():
        return
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        ours = all(set(json.loads(line)) == set(RESULT_FIELDS) for line in lines if line)
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        ours = False
    if not ours:
        raise ImageWriteError(f"refusing to replace {path}: it is not a report exposure-slot wrote")


def write_report(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write result rows as JSON Lines, atomically (a reader never sees half a report)."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    atomic_write_bytes(path, text.encode("utf-8"))


# ------------------------------------------------------------------------------ planning


@dataclass(frozen=True)
class Job:
    """One input and where its result goes; ``problem`` is set when it must not run."""

    source: Path
    target: Path | None = None
    problem: str | None = None


def plan_jobs(
    inputs: Sequence[str],
    output: Path,
    *,
    recursive: bool = False,
    extension: str | None = None,
    suffix: str | None = None,
    replace: bool = False,
    skip_existing: bool = False,
) -> list[Job]:
    """Expand inputs (files, folders, globs) and give each file its output path.

    ``output`` is a file when it has an image extension (then exactly one input file is
    allowed), else a folder, where files from folders and globs keep their sub-folders.
    A file named twice runs once. Files found in folders or globs that lie in the output
    folder and were written by exposure-slot (an earlier run's results) are left out. A job
    gets a ``problem`` instead of running when its input is missing, when its output would be
    an input file or an existing file exposure-slot did not write (unless ``replace``; with
    ``skip_existing`` existing outputs are skipped later), or when two inputs map to one
    output. An output folder inside a folder or glob that is searched recursively is a
    OptionError: its files would be inputs and outputs at once.
    """
    if suffix is not None and any(sep and sep in suffix for sep in (os.sep, os.altsep)):
        raise OptionError(f"--suffix {suffix!r} must not contain a path separator")
    ending = output.suffix.lower()
    to_file = ending in WRITABLE_EXTENSIONS and not output.is_dir()
    unwritable = ending in READABLE_EXTENSIONS | OTHER_IMAGE_EXTENSIONS and not to_file
    if unwritable and not output.is_dir():
        raise OptionError(
            f"-o {output}: cannot write {output.suffix} files; "
            f"use one of {', '.join(e[1:] for e in WRITABLE_EXTENSIONS)}"
        )
    if not to_file and output.exists() and not output.is_dir():
        raise OptionError(f"-o {output} exists and is not a folder")
    found, jobs = _find_inputs(inputs, output, recursive)
    if to_file:
        if len(found) > 1 or (found and found[0][1] is not None):
            what = f"{len(found)} input files" if len(found) > 1 else "a folder input"
            raise OptionError(
                f"-o {output} is a file name but there are {what}; give a folder to -o"
            )
        if extension is not None and extension != output.suffix.lower():
            raise OptionError(f"--format {extension[1:]} contradicts -o {output}")
        if suffix is not None:
            raise OptionError("--suffix applies to folder outputs; -o names the file")
        targets = [output] * len(found)
    else:
        earlier = _earlier_outputs(found, output)
        found = [(f, root) for f, root in found if f not in earlier]
        targets = [_target(f, root, output, extension, suffix) for f, root in found]
    sources = [f for f, _ in found]
    keep_existing = replace or skip_existing
    return jobs + _check_targets(sources, targets, None if to_file else output, keep_existing)


def _find_inputs(
    inputs: Sequence[str], output: Path, recursive: bool
) -> tuple[list[tuple[Path, Path | None]], list[Job]]:
    """Input files, each with the root its sub-folders are mirrored from (None: a file
    named directly), and a failed job for each input that names nothing."""
    found: list[tuple[Path, Path | None]] = []
    jobs: list[Job] = []
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            if recursive:
                _refuse_output_inside(output, path, f"the input folder {path}, searched with -r")
            files = _folder_images(path, recursive)
            if not files:
                jobs.append(Job(path, problem=f"{path}: no image files in this folder"))
            found += [(f, path) for f in files]
        elif path.is_file():
            found.append((path, None))
        elif glob.has_magic(text):
            root = _glob_root(path)
            if _pattern_reaches(path.relative_to(root).parts, output, root):
                _refuse_output_inside(output, root, f"{root}, searched by the pattern {text}")
            matches = sorted(glob.glob(str(path), recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                jobs.append(Job(path, problem=f"{text}: no files match this pattern"))
            found += [(f, root) for f in files]
        else:
            jobs.append(Job(path, problem=f"{path}: no such file or folder"))
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for file, root in found:
        key = file_identity(file)
        if key not in seen:
            seen.add(key)
            unique.append((file, root))
    return unique, jobs


def _glob_root(pattern: Path) -> Path:
    """The folder part of a glob pattern before its first wildcard."""
    parts = pattern.parts
    literal = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    return Path(*parts[:literal]) if literal else Path()


def _refuse_output_inside(output: Path, root: Path, searched: str) -> None:
    """A OptionError when the output folder lies strictly inside a folder searched below its
    top level: the originals there would be taken for results, and results for originals."""
    out, here = output.resolve(), root.resolve()
    if out != here and out.is_relative_to(here):
        raise OptionError(
            f"-o {output} lies inside {searched}: its files would be both inputs and "
            f"outputs; give an -o outside {root}, or -o {root} to write beside each input"
        )


def _pattern_reaches(pattern: Sequence[str], output: Path, root: Path) -> bool:
    """Whether the glob ``pattern`` (parts below ``root``) can match files inside ``output``."""
    out, here = output.resolve(), root.resolve()
    if not out.is_relative_to(here):
        return False

    def reaches(parts: Sequence[str], folders: Sequence[str]) -> bool:
        if not folders:
            return len(parts) > 0
        if not parts:
            return False
        if parts[0] == "**":
            return reaches(parts[1:], folders) or reaches(parts, folders[1:])
        return fnmatch.fnmatchcase(folders[0], parts[0]) and reaches(parts[1:], folders[1:])

    return reaches(pattern, out.relative_to(here).parts)


def _earlier_outputs(found: list[tuple[Path, Path | None]], output: Path) -> set[Path]:
    """Files found in folders or globs that are earlier results of exposure-slot (they carry
    its mark), which are not inputs: results that lie beside originals found by the same
    folder or glob, and results inside the output folder. A folder or glob that finds only
    results takes them as inputs; a file named directly is always an input."""
    ours = {f for f, root in found if root is not None and is_our_output(f)}
    with_originals = {root for f, root in found if root is not None and f not in ours}
    out = output.resolve()
    return {
        f
        for f, root in found
        if f in ours and (root in with_originals or f.resolve().is_relative_to(out))
    }


def _folder_images(folder: Path, recursive: bool) -> list[Path]:
    """Image files in ``folder`` (sorted; hidden files and hidden folders left out)."""
    pattern = "**/*" if recursive else "*"
    files = []
    for path in folder.glob(pattern):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() not in READABLE_EXTENSIONS or not path.is_file():
            continue
        files.append(path)
    return sorted(files)


def _target(
    source: Path, root: Path | None, output: Path, extension: str | None, suffix: str | None
) -> Path:
    relative = source.relative_to(root) if root is not None else Path(source.name)
    if ".." in relative.parts:  # a glob such as 'a*/../*.jpg': keep only the name
        relative = Path(source.name)
    out_dir = output / relative.parent
    if suffix is None:
        beside = out_dir.resolve() == source.parent.resolve()
        suffix = SAME_FOLDER_SUFFIX if beside else ""
    return out_dir / f"{relative.stem}{suffix}{extension or source.suffix}"


def _check_targets(
    sources: list[Path], targets: list[Path], folder: Path | None, keep_existing: bool
) -> list[Job]:
    """Jobs for (source, target) pairs, refusing targets that are inputs, are taken twice,
    (for a folder output) would land outside ``folder``, or exist and were not written by
    exposure-slot (unless ``keep_existing``: --overwrite or --skip-existing decide)."""
    inputs = {file_identity(s) for s in sources}
    taken: dict[Path, Path] = {}
    jobs = []
    for source, target in zip(sources, targets, strict=True):
        key = target.resolve()
        if target.suffix.lower() not in WRITABLE_EXTENSIONS:
            problem = (
                f"{source}: cannot write {target.suffix or 'extension-less'} files; "
                "choose an output format with --format"
            )
        elif folder is not None and not key.is_relative_to(folder.resolve()):
            problem = f"{source}: refusing to write {target}, which lies outside -o {folder}"
        elif file_identity(target) in inputs:
            problem = f"{source}: refusing to overwrite input {target}; use --suffix or -o"
        elif key in taken:
            problem = f"{source}: output {target} is also the output of {taken[key]}"
        elif not keep_existing and target.exists() and not is_our_output(target):
            problem = (
                f"{source}: refusing to replace {target}, which exposure-slot did not write; "
                "use --overwrite to replace it, --skip-existing to keep it, or another -o or "
                "--suffix"
            )
        else:
            problem = None
            taken[key] = source
        jobs.append(Job(source, target, problem))
    return jobs


def file_identity(path: Path) -> tuple[Any, ...]:
    """What makes two paths the same file: device and inode if it exists, else the path."""
    try:
        stat = path.stat()
    except OSError:
        return ("path", path.resolve())
    return ("inode", stat.st_dev, stat.st_ino)


# ------------------------------------------------------------------------------- running


class Prefetcher:
    """Reads the next images in a background thread while the current one is corrected.

    Yields ``(job, data, error)`` in job order: ``data`` is None for a skipped job (its
    output exists and ``skip_existing`` is set) or a failed one (``error`` set).
    """

    def __init__(
        self, jobs: Sequence[Job], *, max_pixels: int | None, skip_existing: bool, depth: int = 2
    ):
        self._jobs = jobs
        self._max_pixels = max_pixels
        self._skip_existing = skip_existing
        self._queue: queue.Queue[tuple[Job, ImageData | None, Exception | None]]
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="exposure-slot-reader", daemon=True)

    def __iter__(self) -> Iterator[tuple[Job, ImageData | None, Exception | None]]:
        self._thread.start()
        for _ in self._jobs:
            yield self._queue.get()
        self._thread.join()

    def stop(self) -> None:
        """Tell the reader to stop after the file it is reading."""
        self._stop.set()

    def _work(self) -> None:
        for job in self._jobs:
            item: tuple[Job, ImageData | None, Exception | None]
            if job.problem is not None or (self._skip_existing and job.target.exists()):
                item = (job, None, None)
            else:
                try:
                    item = (job, read_image(job.source, max_pixels=self._max_pixels), None)
                except Exception as exc:  # handed to the main thread, which decides
                    item = (job, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if self._stop.is_set():
                return


def run_jobs(
    jobs: Sequence[Job],
    corrector: ExposureCorrector,
    *,
    quality: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    skip_existing: bool = False,
    threads: ThreadPolicy | None = None,
    workers: int = 1,
    report: Path | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Correct every job with ``corrector``; returns one result row per job, in job order.

    The next photos are decoded in a background thread while the current ones are corrected;
    ``workers`` photos are corrected at once (each in a thread of its own when above 1: the
    full-size work of fast mode runs side by side, the network passes take turns).
    ``options`` go to the corrector (``mode``, ``strength`` ...). Library errors, OS errors
    and failed memory allocations of one file give that file a failed row and the batch goes
    on; any other exception is a bug and propagates. ``threads`` sets torch's threads before
    each image (with several workers once, before they start). ``on_row`` sees each row in
    job order as it is made (progress, messages). ``report`` gets the rows as JSON Lines,
    also when interrupted (the rows done). Ctrl-C stops after the files being written are
    finished or cleaned up (write_image never leaves a partial file) and re-raises.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise OptionError(f"workers must be a positive integer, not {workers!r}")
    for folder in {job.target.parent for job in jobs if job.target is not None}:
        for stale in remove_stale_temp_files(folder):
            log.info("removed %s, left by a killed run", stale)
    reader = Prefetcher(jobs, max_pixels=max_pixels, skip_existing=skip_existing, depth=workers + 1)
    pool = None
    if workers > 1:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="exposure-slot-worker")
        if threads is not None:
            threads.apply()
            threads = None
    pending: deque[Future[dict[str, Any]]] = deque()
    rows: list[dict[str, Any]] = []

    def emit(made: Future[dict[str, Any]]) -> None:
        rows.append(made.result())
        if on_row is not None:
            on_row(rows[-1])

    try:
        for job, data, error in reader:
            if job.problem is not None or error is not None:
                failure = _failure(job, error or job.problem)
                pending.append(_ready(result_row(job.source, job.target, "failed", failure)))
            elif data is None:
                pending.append(_ready(result_row(job.source, job.target, "skipped")))
            elif pool is None:
                pending.append(
                    _ready(_correct_one(corrector, job, data, quality, threads, options))
                )
            else:
                args = (corrector, job, data, quality, None, options)
                pending.append(pool.submit(_correct_one, *args))
            del data  # a failed allocation must not keep this image's memory
            while pending and (pending[0].done() or len(pending) > workers):
                emit(pending.popleft())
        while pending:
            emit(pending.popleft())
    except KeyboardInterrupt:
        reader.stop()
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)  # photos being written are finished whole
        if report is not None:
            write_report(report, rows)
    return rows


def _ready(row: dict[str, Any]) -> Future[dict[str, Any]]:
    """A row already made, queued among the rows being made (rows come out in job order)."""
    done: Future[dict[str, Any]] = Future()
    done.set_result(row)
    return done


def _correct_one(
    corrector: ExposureCorrector,
    job: Job,
    data: ImageData,
    quality: int | None,
    threads: ThreadPolicy | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Correct and write one decoded photo; its result row (failed rows name the reason)."""
    start = time.perf_counter()
    try:
        if threads is not None:
            threads.apply()
        write_corrected(corrector, data, job.target, quality=quality, **options)
        plan = str(corrector.plan(data.rgb, **plan_options(options)))
    except Exception as exc:
        return result_row(job.source, job.target, "failed", _failure(job, exc), start=start)
    return result_row(job.source, job.target, "written", start=start, plan=plan)


def _failure(job: Job, error: object) -> str:
    """The message of a failed job, naming its file; anything but a library or OS error, or
    a failed allocation, is a bug and raised again."""
    if _allocation_failed(error):
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "MemoryError"
        error = (
            f"not enough memory for this image ({reason}); try a smaller --max-memory or "
            "--tile-size, or --mode fast"
        )
    elif isinstance(error, Exception) and not isinstance(error, (ExposureSlotError, OSError)):
        raise error
    message = str(error)
    return message if str(job.source) in message else f"{job.source}: {message}"


def _allocation_failed(error: object) -> bool:
    """Whether ``error`` is a failed memory allocation (numpy's MemoryError, torch's
    RuntimeError from its CPU or CUDA allocator)."""
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(t in text for t in _ALLOCATION_FAILURES)
