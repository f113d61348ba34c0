"""The ``exposure-slot`` command line: correct photos, look at slots, convert and share weights.

``exposure-slot`` and ``python -m exposure_slot`` run :func:`main`. Exit status: 0 when
everything worked, 1 when a file or the weights failed (each failure named on stderr), 2 for
usage errors (bad options), 128 + the signal's number when stopped by a signal: 130 for
Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP (each cleans up like Ctrl-C).

A thin layer: it parses and checks the options, calls the library (:mod:`exposure_slot.batch`
runs ``correct``, :mod:`exposure_slot.train_config` declares and runs ``train``) and maps its
exceptions to exit statuses. Parsing loads no torch, so ``--help``, ``--version`` and usage
errors answer at once; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, train_config
from .errors import ExposureSlotError, OptionError, UnsupportedPrecisionError, WeightsNotFoundError
from .samples import DEFAULT_SAMPLE, SAMPLES

if TYPE_CHECKING:
    import torch

    from .corrector import ExposureCorrector

PROG = "exposure-slot"
METHODS = ("model", "identity", "auto_gamma", "clahe")
INTERRUPTED = 128 + signal.SIGINT
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals handled like Ctrl-C: the file being written is removed, exit 128 + the number."""
LIBRARY_FACTS = {
    "max_strength": ("options", "MAX_STRENGTH"),
    "max_pixels": ("files", "DEFAULT_MAX_PIXELS"),
    "same_folder_suffix": ("batch", "SAME_FOLDER_SUFFIX"),
    "max_sheet_pixels": ("visualize", "MAX_SHEET_PIXELS"),
}
"""Library values that help texts show as ``{name}``: (module, attribute). They are looked
up only when help is printed, as some of their modules load torch."""


class _Facts(dict[str, Any]):
    """:data:`LIBRARY_FACTS` by name, each module imported on first use."""

    def __missing__(self, key: str) -> Any:
        module, name = LIBRARY_FACTS[key]
        self[key] = value = getattr(importlib.import_module(f".{module}", __package__), name)
        return value


class _HelpFormatter(argparse.HelpFormatter):
    """Fills the ``{name}`` library values (see :data:`LIBRARY_FACTS`) into help texts."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        return text.format_map(_Facts()) if text else text


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) raised in the main thread, cleaned up like Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_status(exc: KeyboardInterrupt) -> int:
    """Exit status for an interruption: 128 + the signal's number (SIGINT for Ctrl-C)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ------------------------------------------------------------------------------- entry


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Parsing loads no torch (nor does ``--help`` or a usage error): each command imports what
    it needs when it runs."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        with _stop_signals_raise(), warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.run(args)
    except KeyboardInterrupt as exc:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return _stop_status(exc)
    except BrokenPipeError:  # output piped into a reader that stopped (e.g. `| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OptionError, UnsupportedPrecisionError) as exc:
        args.parser.print_usage(sys.stderr)
        _error(exc)
        return 2
    except (ExposureSlotError, OSError) as exc:
        _error(exc)
        return 1


def _error(message: object) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _show_warning(message: Warning | str, category: type[Warning], *args: object) -> None:
    from tqdm import tqdm

    tqdm.write(f"{PROG}: warning: {message}", file=sys.stderr)


def _print(text: object) -> None:
    """Print to stdout; file names that are not valid text show their bytes as \\xNN."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    shown = os.fsencode(str(text)).decode("utf-8", "backslashreplace")
    print(shown.encode(encoding, "backslashreplace").decode(encoding))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Fix badly exposed photos with Exposure-slot (CVPR 2025)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    model = _model_options()
    for add in (
        _add_demo,
        _add_correct,
        _add_slots,
        _add_info,
        _add_convert,
        _add_export,
        _add_app,
        _add_push,
        _add_eval,
        _add_train,
    ):
        add(commands, model)
    return parser


def _model_options() -> argparse.ArgumentParser:
    """Options shared by every command that loads a network."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("model")
    group.add_argument(
        "--weights",
        default="default",
        help="manifest name, .pth/.safetensors file, weights folder or Hub repo id "
        "(default: %(default)s)",
    )
    group.add_argument("--revision", help="Hub branch, tag or commit of --weights")
    group.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    group.add_argument(
        "--dtype",
        choices=("float32", "float16", "bfloat16"),
        help="compute precision of every pass (default: float16 on CUDA, float32 elsewhere, "
        "with fast mode's proxy pass in bfloat16 on CPUs that have native bfloat16)",
    )
    group.add_argument(
        "--compile",
        action="store_true",
        help="compile the network's local stages with torch.compile (the first image of each "
        "size compiles, which takes a while)",
    )
    return common


def _subcommand(
    commands: Any, name: str, run: Callable[[argparse.Namespace], int], **kwargs: Any
) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, **{"formatter_class": _HelpFormatter, **kwargs})
    sub.set_defaults(run=run, parser=sub)
    return sub


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _quality(text: str) -> int:
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be from 1 to 100, got {value}")
    return value


def _strength(text: str) -> float:
    from .options import MAX_STRENGTH, check_strength

    try:
        return check_strength(float(text))
    except (ValueError, OptionError):
        raise argparse.ArgumentTypeError(
            f"must be a number from 0 to {MAX_STRENGTH:g}, not {text!r}"
        ) from None


def _max_pixels(text: str) -> int | None:
    """``--max-pixels``: a pixel count, or None (no limit) for 0 or none."""
    return None if text.strip().lower() in ("0", "none") else _positive_int(text)


def _extension(text: str) -> str:
    from .files import WRITABLE_EXTENSIONS

    ext = "." + text.lower().lstrip(".")
    if ext not in WRITABLE_EXTENSIONS:
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}; use one of {', '.join(e[1:] for e in WRITABLE_EXTENSIONS)}"
        )
    return ext


def _add_processing_options(sub: argparse.ArgumentParser) -> None:
    group = sub.add_argument_group("processing (default: as the library decides)")
    group.add_argument(
        "--mode",
        choices=("auto", "exact", "fast"),
        help="exact: whole-image result (tiled when large); fast: network on a proxy, "
        "correction carried to full size; auto: exact unless the image is very large",
    )
    group.add_argument("--tile-size", type=_positive_int, help="tile side in pixels (exact)")
    group.add_argument("--proxy-size", type=_positive_int, help="proxy long side (fast)")
    group.add_argument(
        "--max-memory",
        type=_positive_int,
        metavar="MIB",
        help="memory an exact pass plans to use (default: a quarter of the free memory)",
    )
    group.add_argument(
        "--strength",
        type=_strength,
        help="how much of the correction to apply: 0 = the photo as it is, 1 = the "
        "network's correction (default), up to {max_strength:g}",
    )
    group.add_argument(
        "--threads",
        type=_positive_int,
        help="torch threads per image (default: one per core that other processes leave "
        "idle, measured before each image)",
    )


def _processing_options(args: argparse.Namespace) -> dict[str, Any]:
    """The corrector options the user gave: others stay at the library's defaults."""
    given = {
        "mode": args.mode,
        "tile_size": args.tile_size,
        "proxy_size": args.proxy_size,
        "max_memory": args.max_memory and args.max_memory * 2**20,
        "strength": args.strength,
    }
    return {key: value for key, value in given.items() if value is not None}


def _load_corrector(args: argparse.Namespace) -> ExposureCorrector:
    from .corrector import ExposureCorrector

    hub = {"revision": args.revision} if args.revision else {}
    device = parse_device(args.device)
    try:
        return ExposureCorrector(
            args.weights, device=device, dtype=args.dtype, compile=args.compile, **hub
        )
    except WeightsNotFoundError as exc:
        if args.weights != "default":
            raise
        raise WeightsNotFoundError(
            f"{exc} (on the command line: --weights FILE, FOLDER or ORG/NAME on the Hub)"
        ) from exc


def parse_device(name: str | None) -> torch.device | None:
    """``--device`` as a torch device, refusing devices this machine does not have."""
    from .corrector import resolve_device

    return None if name is None else resolve_device(name, "--device")


# -------------------------------------------------------------------------------- demo


def _add_demo(commands: Any, model: argparse.ArgumentParser) -> None:
    sub = _subcommand(
        commands,
        "demo",
        _run_demo,
        parents=[model],
        help="correct a bundled sample photo and save a before/after picture",
        description="Correct a badly exposed sample photo that ships with the package and "
        "save the input and the result side by side: a first run that needs no photo of "
        "your own.",
    )
    sub.add_argument(
        "-o",
        "--output",
        default="before_after.jpg",
        metavar="OUT",
        help="picture to write (default: %(default)s; an existing file is never replaced)",
    )
    sub.add_argument(
        "--sample",
        choices=sorted(SAMPLES),
        default=DEFAULT_SAMPLE,
        help="which bundled photo (default: %(default)s)",
    )


def _run_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from .files import read_image, write_image
    from .samples import sample_path
    from .visualize import montage, to_pil

    output = _image_output(args.output)
    if output.exists() or output.is_symlink():
        raise OptionError(f"-o {output} already exists; choose another name")
    sample = SAMPLES[args.sample]
    photo = read_image(sample_path(sample.name))
    fixed = _load_corrector(args)(photo.rgb)
    picture = montage(
        [to_pil(photo.rgb), to_pil(fixed)],
        [f"before: {sample.caption}", "after: exposure-slot"],
        height=photo.rgb.shape[0],
    )
    write_image(output, np.asarray(picture))
    print(f"wrote {output} (sample photo: {sample.caption}; licence: {sample.licence})")
    return 0


# ----------------------------------------------------------------------------- correct


def _add_correct(commands: Any, model: argparse.ArgumentParser) -> None:
    sub = _subcommand(
        commands,
        "correct",
        _run_correct,
        parents=[model],
        help="correct the exposure of photos",
        description="Correct photos: files, folders or glob patterns in, corrected photos out. "
        "Output keeps each input's size, mode, bit depth, alpha, ICC profile and EXIF "
        "(orientation applied to the pixels). Inputs are never overwritten, nor any other "
        "file exposure-slot did not write unless --overwrite is given.",
    )
    sub.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image file, folder, or quoted glob pattern ('**' matches sub-folders); "
        "- reads one image from standard input",
    )
    sub.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="output file (one input file, image extension) or folder (created; "
        "sub-folders of input folders and globs are mirrored)",
    )
    sub.add_argument(
        "-r", "--recursive", action="store_true", help="descend into sub-folders of INPUT folders"
    )
    sub.add_argument(
        "--format",
        type=_extension,
        metavar="EXT",
        help="output format for a folder output: jpg, png, tif, webp, bmp "
        "(default: each input's own extension)",
    )
    sub.add_argument(
        "--suffix",
        help="added to output file stems (default: none, or "
        "'{same_folder_suffix}' when an output lands beside its input)",
    )
    sub.add_argument("--quality", type=_quality, help="JPEG/WebP quality 1-100 (default 95)")
    existing = sub.add_mutually_exclusive_group()
    existing.add_argument(
        "--skip-existing", action="store_true", help="leave outputs that already exist alone"
    )
    existing.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files even if exposure-slot did not write them "
        "(without it, only files an earlier run wrote are replaced)",
    )
    sub.add_argument(
        "--max-pixels",
        type=_max_pixels,
        default=argparse.SUPPRESS,  # not given: the library's default
        help="refuse images with more pixels (decompression-bomb guard; 0 = no limit; "
        "default {max_pixels})",
    )
    sub.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on a Ray cluster (needs the [ray] extra): 'auto' joins the cluster of "
        "`ray start --head` here, ray://HOST:10001 a remote one; without ADDRESS a local "
        "cluster is started for this run",
    )
    sub.add_argument(
        "--actors",
        type=_positive_int,
        default=1,
        help="with --ray: correctors running at once (default: %(default)s)",
    )
    sub.add_argument(
        "--gpus-per-actor",
        type=float,
        default=0,
        help="with --ray: GPUs each corrector asks Ray for (1 on GPU nodes; default: 0)",
    )
    sub.add_argument(
        "--report",
        metavar="FILE.jsonl",
        help="write one JSON line per input: input, output, status (written, skipped, "
        "failed), error, seconds, plan",
    )
    sub.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="photos corrected at once, each with one torch thread unless --threads says "
        "otherwise (default: %(default)s)",
    )
    _add_processing_options(sub)
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    sub.add_argument("-v", "--verbose", action="store_true", help="log how each image is processed")


def _run_correct(args: argparse.Namespace) -> int:
    if "-" in args.inputs or args.output == "-":
        return _run_correct_piped(args)
    from . import batch

    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    jobs = batch.plan_jobs(
        args.inputs,
        Path(args.output),
        recursive=args.recursive,
        extension=args.format,
        suffix=args.suffix,
        replace=args.overwrite,
        skip_existing=args.skip_existing,
    )
    if not any(job.problem is None for job in jobs):
        for job in jobs:
            _error(job.problem)
        return 1
    report = None if args.report is None else Path(args.report)
    if report is not None:
        batch.check_report_target(report)
    if args.ray is not None:
        if args.workers > 1:
            raise OptionError("--workers counts photos on this machine; with --ray use --actors")
        return _run_correct_on_ray(args)
    return _correct_here(args, jobs, report)


def _correct_here(args: argparse.Namespace, jobs: list[Any], report: Path | None) -> int:
    """Run planned jobs in this process, with a progress bar and each failure on stderr."""
    import numpy as np
    from tqdm import tqdm

    from .batch import plan_options, run_jobs
    from .threads import ThreadPolicy

    corrector = _load_corrector(args)
    options = _processing_options(args)
    if options:  # bad combinations are usage errors, found before any file is read
        corrector.plan(np.zeros((8, 8, 3), np.float32), **plan_options(options))
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(jobs), unit="img", desc="correct", disable=args.quiet, file=sys.stderr)

    def show(row: dict[str, Any]) -> None:
        rows.append(row)
        bar.update()
        if row["status"] == "failed":
            tqdm.write(f"{PROG}: error: {row['error']}", file=sys.stderr)

    try:
        run_jobs(
            jobs,
            corrector,
            quality=args.quality,
            skip_existing=args.skip_existing,
            threads=ThreadPolicy(args.threads or (None if args.workers == 1 else 1)),
            workers=args.workers,
            report=report,
            on_row=show,
            **_limits(args),
            **options,
        )
    except KeyboardInterrupt as exc:
        bar.close()
        written = sum(row["status"] == "written" for row in rows)
        print(
            f"{PROG}: interrupted: {written} of {len(jobs)} image(s) written, no partial file left",
            file=sys.stderr,
        )
        return _stop_status(exc)
    bar.close()
    return _summary(rows, args.quiet)


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    """``--max-pixels`` when given (else the library's default applies)."""
    return {"max_pixels": args.max_pixels} if hasattr(args, "max_pixels") else {}


def _summary(rows: list[dict[str, Any]], quiet: bool) -> int:
    """Print how many inputs were written, skipped and failed; the exit status."""
    from .batch import STATUSES

    counts = {status: sum(row["status"] == status for row in rows) for status in STATUSES}
    if not quiet:
        print(", ".join(f"{n} {status}" for status, n in counts.items()), file=sys.stderr)
    return 1 if counts["failed"] else 0


PIPE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}
"""Pillow's format name -> the extension written to standard output (others: PNG)."""


def _run_correct_piped(args: argparse.Namespace) -> int:
    """``correct - -o OUT`` and ``correct IN -o -``: one image through standard input or
    output, by way of files in a private temporary folder."""
    if len(args.inputs) != 1 or args.ray is not None or args.report is not None:
        raise OptionError("- (standard input or output) takes one image, without --ray/--report")
    with tempfile.TemporaryDirectory(prefix="exposure-slot-") as tmp:
        source = Path(args.inputs[0])
        if args.inputs == ["-"]:
            source = Path(tmp) / "stdin"
            source.write_bytes(sys.stdin.buffer.read())
        to_stdout = args.output == "-"
        if to_stdout:
            kind = args.format or PIPE_FORMATS.get(str(_identify_format(source)), ".png")
            args.output = str(Path(tmp) / f"stdout{kind}")
        args.inputs, args.format, args.quiet = [str(source)], None, args.quiet or to_stdout
        status = _run_correct(args)
        if to_stdout and status == 0:
            sys.stdout.buffer.write(Path(args.output).read_bytes())
            sys.stdout.buffer.flush()
        return status


def _identify_format(path: Path) -> str | None:
    """Pillow's name for the format of ``path`` (None if it is not an image it knows)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.format
    except (OSError, UnidentifiedImageError):
        return None


def _run_correct_on_ray(args: argparse.Namespace) -> int:
    """``correct --ray``: the same job through :func:`exposure_slot.distributed.correct_files`."""
    from .distributed import correct_files
    from .extras import require

    ray = require("ray", "ray")
    ray.data.DataContext.get_current().enable_progress_bars = not args.quiet
    started = not ray.is_initialized()
    if started:
        address = None if args.ray == "local" else args.ray
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        rows = correct_files(
            args.inputs,
            args.output,
            recursive=args.recursive,
            extension=args.format,
            suffix=args.suffix,
            overwrite=args.overwrite,
            skip_existing=args.skip_existing,
            weights=args.weights,
            device=args.device,
            dtype=args.dtype,
            quality=args.quality,
            actors=args.actors,
            gpus_per_actor=args.gpus_per_actor,
            report=args.report,
            **_limits(args),
            **_processing_options(args),
        )
    finally:
        if started:
            ray.shutdown()
    for row in rows:
        if row["status"] == "failed":
            _error(
                row["error"] if row["input"] in row["error"] else f"{row['input']}: {row['error']}"
            )
    return _summary(rows, args.quiet)


# ------------------------------------------------------------------------------- slots


def _add_slots(commands: Any, model: argparse.ArgumentParser) -> None:
    sub = _subcommand(
        commands,
        "slots",
        _run_slots,
        parents=[model],
        help="picture of the slot assignments of a photo",
        description="Save one picture of what the slots found: per level, the photo tinted by "
        "slot and the label map. The network runs on the photo downscaled to --size.",
    )
    sub.add_argument("input", metavar="INPUT", help="image file")
    sub.add_argument("-o", "--output", required=True, metavar="OUT", help="picture to write")
    sub.add_argument("--size", type=_positive_int, default=1024, help="long side the network sees")
    sub.add_argument(
        "--height",
        type=_positive_int,
        default=320,
        help="panel height (the picture may have at most {max_sheet_pixels:,} pixels)",
    )
    sub.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT even if exposure-slot did not write it",
    )


def _run_slots(args: argparse.Namespace) -> int:
    import numpy as np

    from .batch import file_identity
    from .files import is_our_output, read_image, write_image
    from .visualize import fit_long_side, slot_sheet

    output = _image_output(args.output)
    if Path(args.input).exists() and file_identity(output) == file_identity(Path(args.input)):
        raise OptionError(f"-o {output} is the input; refusing to overwrite it")
    if not args.overwrite and output.exists() and not is_our_output(output):
        raise OptionError(
            f"-o {output} exists and exposure-slot did not write it; use --overwrite to replace it"
        )
    rgb = fit_long_side(read_image(args.input).rgb, args.size)
    corrector = _load_corrector(args)
    maps = corrector.slot_maps(rgb)
    sheet = slot_sheet(rgb, maps.levels, height=args.height)
    write_image(args.output, np.asarray(sheet))
    _print(args.output)
    return 0


# -------------------------------------------------------------------------------- info


def _add_info(commands: Any, model: argparse.ArgumentParser) -> None:
    _subcommand(
        commands,
        "info",
        _run_info,
        parents=[model],
        help="versions, device and the weights in use",
        description="Print versions, the device and precision, and the weights in use.",
    )


def _run_info(args: argparse.Namespace) -> int:
    import torch

    from .corrector import default_device, resolve_precision, resolve_proxy_precision
    from .weights import load_manifest

    device = parse_device(args.device) or default_device()
    print(f"exposure-slot {__version__}")
    cuda = f"CUDA {torch.version.cuda}" if torch.cuda.is_available() else "no CUDA"
    print(f"torch {torch.__version__} ({cuda})")
    print(f"device: {device}")
    print(f"dtype: {str(resolve_precision(device, args.dtype)).removeprefix('torch.')}")
    proxy = resolve_proxy_precision(device, args.dtype)
    print(f"fast-mode proxy dtype: {str(proxy).removeprefix('torch.')}")
    try:
        corrector = _load_corrector(args)
    except WeightsNotFoundError as exc:
        if args.weights != "default":
            raise
        print(f"weights: none loaded: {exc}")
    else:
        info = corrector.weights_info
        print(f"weights: {info.name}")
        print(f"  source: {info.source}")
        print(f"  sha256: {info.sha256 or 'unknown'}")
        print(f"  licence: {info.licence or 'not stated'}")
        counts = corrector.net.config.slot_counts
        print(f"  level: {corrector.level}, slots per level: {', '.join(map(str, counts))}")
    manifest = load_manifest()
    print(f"named weights (default: {manifest.default or 'none bundled'}):")
    for entry in manifest.entries.values():
        where = "bundled" if entry.bundled else entry.repo_id or "not downloadable"
        print(f"  {entry.name}: level {entry.level}, {where}; licence: {entry.licence}")
    return 0


# ----------------------------------------------------------------------- convert, push


def _add_app(commands: Any, model: argparse.ArgumentParser) -> None:
    sub = _subcommand(
        commands,
        "app",
        _run_app,
        parents=[model],
        help="a local web page to correct photos (needs the [app] extra)",
        description="Serve a web page on 127.0.0.1: drop photos, set the strength, compare "
        "before and after, see the slot maps, download the results with their metadata.",
    )
    sub.add_argument("--port", type=_positive_int, default=7860, help="(default: %(default)s)")
    sub.add_argument("--open", action="store_true", help="open the page in a browser")


def _run_app(args: argparse.Namespace) -> int:
    from .app import serve

    serve(_load_corrector(args), port=args.port, open_browser=args.open)
    return 0


def _add_export(commands: Any, model: argparse.ArgumentParser) -> None:
    sub = _subcommand(
        commands,
        "export",
        _run_export,
        help="export weights as an ONNX model (needs the [onnx] extra)",
        description="Export a network as an ONNX model: one whole-image float32 pass with "
        "dynamic batch, height and width (multiples of 4), outputs clipped to [0, 1] plus the "
        "slot maps; the weights' name, sha256 and licence go into the model's metadata.",
    )
    sub.add_argument("source", metavar="WEIGHTS", help="manifest name (e.g. default), file, "
                     "folder or Hub repo id")  # fmt: skip
    sub.add_argument("output", metavar="OUT.onnx", help="model file to write")
    sub.add_argument("--overwrite", action="store_true", help="replace OUT.onnx if it exists")


def _run_export(args: argparse.Namespace) -> int:
    from .export import export_onnx

    print(export_onnx(args.source, args.output, overwrite=args.overwrite))
    return 0


def _add_convert(commands: Any, model: argparse.ArgumentParser) -> None:
    sub = _subcommand(
        commands,
        "convert",
        _run_convert,
        help="turn a checkpoint into a Hub-ready weights folder",
        description="Convert an authors' checkpoint (or any weights source) into a folder "
        "with model.safetensors (inference tensors, float32), config.json and a README.md "
        "model card.",
    )
    sub.add_argument("source", metavar="CKPT", help=".pth/.safetensors file, folder or name")
    sub.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (created)")
    sub.add_argument("--name", help="model name in the card (default: OUT_DIR's name)")
    sub.add_argument("--licence", "--license", dest="licence", help="licence of the weights")
    sub.add_argument("--repo-id", help="Hub repo id used in the card's loading example")


def _run_convert(args: argparse.Namespace) -> int:
    """Convert a checkpoint into a Hub-ready folder (see :func:`convert_checkpoint`)."""
    from .weights import convert_checkpoint

    card = convert_checkpoint(
        args.source, args.out_dir, name=args.name, licence=args.licence, repo_id=args.repo_id
    )
    _print(
        f"{args.out_dir}: level {card.level}, slots {list(card.slot_counts)}, sha256 {card.sha256}"
    )
    return 0


def _add_push(commands: Any, model: argparse.ArgumentParser) -> None:
    sub = _subcommand(
        commands,
        "push",
        _run_push,
        help="upload a weights folder to the Hugging Face Hub",
        description="Upload a folder written by 'convert' to a Hub model repo (created if "
        "needed). Needs a write token: HF_TOKEN or 'hf auth login'.",
    )
    sub.add_argument("folder", metavar="FOLDER")
    sub.add_argument("repo_id", metavar="REPO_ID", help="org/name")
    sub.add_argument("--private", action="store_true", help="create the repo as private")


def _run_push(args: argparse.Namespace) -> int:
    """Upload a weights folder (see :func:`push_folder_to_hub`)."""
    from .weights.hub import push_folder_to_hub

    commit = push_folder_to_hub(args.folder, args.repo_id, private=args.private)
    _print(f"pushed {args.folder} to {args.repo_id} at revision {commit}")
    return 0


# -------------------------------------------------------------------------------- eval


def _add_eval(commands: Any, model: argparse.ArgumentParser) -> None:
    sub = _subcommand(
        commands,
        "eval",
        _run_eval,
        parents=[model],
        help="PSNR/SSIM on paired folders or a paper data set",
        description="Score the model and classical baselines on (input, target) pairs with the "
        "paper's protocol and print a markdown table. Give INPUT_DIR TARGET_DIR, or --dataset "
        "with --root.",
    )
    sub.add_argument("folders", nargs="*", metavar="DIR", help="INPUT_DIR TARGET_DIR")
    sub.add_argument(
        "--layout",
        choices=("plain", "msec", "sice", "lcdp"),
        default="plain",
        help="how inputs are named and grouped (default: %(default)s)",
    )
    sub.add_argument("--groups", help="JSON/CSV name→group mapping (plain layout)")
    sub.add_argument("--dataset", choices=("msec", "sice", "lcdp"), help="paper data set")
    sub.add_argument("--root", help="folder of --dataset")
    sub.add_argument("--split", default="test", help="split of --dataset (default: test)")
    sub.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated, from {', '.join(METHODS)} (default: all)",
    )
    _add_processing_options(sub)
    sub.add_argument(
        "--resize-long-side", type=_positive_int, help="downscale pairs first (faster)"
    )
    sub.add_argument("--json", metavar="OUT.json", help="also write all scores as JSON")
    sub.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _run_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from . import evaluation

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise OptionError(f"--methods: unknown {', '.join(unknown) or '(none given)'}")
    if args.dataset is not None:
        if args.folders or args.root is None:
            raise OptionError("--dataset needs --root and no INPUT_DIR TARGET_DIR")
        pairs = evaluation.dataset_pairs(args.root, args.dataset, args.split)
    elif len(args.folders) == 2:
        pairs = evaluation.find_pairs(*args.folders, layout=args.layout, groups=args.groups)
    else:
        raise OptionError("give INPUT_DIR TARGET_DIR, or --dataset NAME --root DIR")
    available: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "identity": evaluation.identity,
        "auto_gamma": evaluation.auto_gamma,
        "clahe": evaluation.clahe,
    }
    if "model" in methods:
        corrector = _load_corrector(args)
        options = _processing_options(args)
        available["model"] = lambda rgb: corrector(rgb, **options)
    chosen = {name: available[name] for name in methods}
    with warnings.catch_warnings():  # resized targets are listed as notes below
        warnings.filterwarnings("ignore", message=r".*had a different size from their input")
        results = evaluation.evaluate(
            chosen, pairs, resize_long_side=args.resize_long_side, progress=not args.quiet
        )
    print(results.table())
    for note in results.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(results.to_json() + "\n")
    return 0


# ------------------------------------------------------------------------------- train


def _add_train(commands: Any, model: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "train",
        help="train or fine-tune weights (see 'exposure-slot train --help')",
        description=train_config.DESCRIPTION,
        formatter_class=train_config.FORMATTER,
    )
    sub.set_defaults(run=_run_train, parser=sub)
    train_config.add_options(sub)


def _run_train(args: argparse.Namespace) -> int:
    return train_config.run(*train_config.config_from(args))


# ------------------------------------------------------------------------------ shared


def _image_output(name: str) -> Path:
    """``-o`` of a command that writes one picture: its extension must be one we write."""
    from .files import WRITABLE_EXTENSIONS

    output = Path(name)
    if output.suffix.lower() not in WRITABLE_EXTENSIONS:
        raise OptionError(f"-o {output}: use an image extension ({', '.join(WRITABLE_EXTENSIONS)})")
    return output
