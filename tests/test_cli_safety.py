"""The command line never loses or silently damages a photo (issue 22): which existing files a
batch may replace, stop signals and killed runs, memory limits, odd file names, and the
argument checks of ``train`` and ``eval``. Signals and limits are real, in real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin, features
from test_cli import ASTRONAUT, COFFEE, WEIGHTS, correct, files, hashes, save

from exposure_slot import cli
from exposure_slot.files import is_our_output, read_image, write_image


def run(
    *argv: object, prelude: str = "", env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``exposure-slot ARGV`` in a new process after ``prelude`` (which may set limits), with
    ``env`` added to the environment."""
    code = (
        f"import sys\n{prelude}\nfrom exposure_slot.cli import main\nsys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, argv)],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


# --- which files a run may replace ----------------------------------------------------------


def test_output_folder_inside_a_recursive_input_is_a_usage_error(tmp_path, capsys):
    photos = tmp_path / "photos"
    save(photos / "a.png", ASTRONAUT)
    save(photos / "2023" / "a.png", COFFEE)
    before = hashes(tmp_path)
    assert correct(photos, "-r", "-o", photos / "2023") == 2
    error = capsys.readouterr().err
    assert f"-o {photos / '2023'} lies inside the input folder {photos}" in error
    assert f"give an -o outside {photos}" in error
    assert correct(f"{photos}/**/*.png", "-o", photos / "2023") == 2  # a recursive glob too
    assert hashes(tmp_path) == before


def test_an_original_where_an_output_goes_is_never_replaced(tmp_path, capsys):
    photos = tmp_path / "photos"
    save(photos / "a.png", ASTRONAUT)
    save(photos / "2023" / "a.png", COFFEE)
    before = hashes(tmp_path)
    # Not recursive: photos/a.png's output would be photos/2023/a.png, an original.
    assert correct(photos, "-o", photos / "2023") == 1
    error = capsys.readouterr().err
    assert f"{photos / 'a.png'}: refusing to replace {photos / '2023' / 'a.png'}" in error
    assert correct(photos / "a.png", "-o", photos / "2023" / "a.png") == 1  # a file output
    assert hashes(tmp_path) == before
    assert correct(photos, "-o", photos / "2023", "--overwrite") == 0  # asked for: replaced
    assert is_our_output(photos / "2023" / "a.png")


def test_a_file_named_like_an_output_is_an_input_and_is_not_replaced(tmp_path, capsys):
    shots = tmp_path / "shots"
    save(shots / "x.png", ASTRONAUT)
    save(shots / "x_corrected.png", COFFEE)  # somebody's original, not a result of ours
    original = (shots / "x_corrected.png").read_bytes()
    assert correct(shots, "-o", shots) == 1
    error = capsys.readouterr().err
    assert str(shots / "x.png") in error and str(shots / "x_corrected.png") in error
    assert (shots / "x_corrected.png").read_bytes() == original
    assert files(shots) == {"x.png", "x_corrected.png", "x_corrected_corrected.png"}


def test_rerunning_beside_the_inputs_replaces_only_our_results(tmp_path):
    shots = tmp_path / "shots"
    save(shots / "a.jpg", ASTRONAUT)
    save(shots / "sub" / "b.png", COFFEE)
    for _ in range(2):  # the second run neither takes our results for inputs nor refuses them
        assert correct(shots, "-o", shots, "-r") == 0
        assert files(shots) == {"a.jpg", "a_corrected.jpg", "sub/b.png", "sub/b_corrected.png"}
    assert correct(shots / "a_corrected.jpg", "-o", tmp_path / "again.jpg") == 0  # named: input


@pytest.mark.parametrize("ext", ["jpg", "png", "tif", "webp", "bmp"])
def test_our_outputs_carry_a_mark_that_other_files_lack(tmp_path, ext):
    write_image(tmp_path / f"ours.{ext}", ASTRONAUT)
    Image.fromarray(ASTRONAUT).save(tmp_path / f"theirs.{ext}")
    assert is_our_output(tmp_path / f"ours.{ext}")
    assert not is_our_output(tmp_path / f"theirs.{ext}")
    assert np.array_equal(read_image(tmp_path / f"ours.{ext}").rgb.shape, (96, 128, 3))
    with Image.open(tmp_path / f"ours.{ext}") as im:  # still a valid file for Pillow
        im.load()
    (tmp_path / "other.png").write_bytes(b"not an image")
    assert not is_our_output(tmp_path / "other.png")


# --- stop signals and killed runs -----------------------------------------------------------


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="needs POSIX signals")
@pytest.mark.parametrize(
    "signum",
    [
        signal.SIGTERM,
        pytest.param(signal.SIGHUP, marks=pytest.mark.slow),  # the same handler as TERM
        signal.SIGKILL,
    ],
)
def test_a_signal_during_a_write_leaves_no_temporary_file(tmp_path, signum):
    """TERM and HUP clean up like Ctrl-C (exit 128 + signal); after a KILL, which nothing can
    catch, the next run removes the dead writer's temporary file but not a live one's."""
    big = np.tile(ASTRONAUT.astype(np.uint16) * 257, (4, 4, 1))  # 16-bit: a long write
    source = tmp_path / "in" / "big.png"
    source.parent.mkdir()
    Image.fromarray(big[..., 0]).save(source)  # (gray 16-bit keeps the test's encode short)
    out = tmp_path / "out"
    argv = ["correct", source, "-o", out, "--weights", WEIGHTS, "--device", "cpu", "-q"]
    argv += ["--mode", "fast", "--proxy-size", "64"]
    process = subprocess.Popen(
        [sys.executable, "-m", "exposure_slot", *map(str, argv)], stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.name.startswith(".") for p in out.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, "no temporary file seen"
        time.sleep(0.001)
    process.send_signal(signum)
    status = process.wait(timeout=60)
    stderr = process.stderr.read().decode()
    if signum != signal.SIGKILL:
        assert status == 128 + signum, stderr
        assert "interrupted" in stderr
        assert files(out) == set()  # neither a temporary file nor a partial output
        return
    [stale] = files(out)
    live = re.sub(r"-[0-9]+-", f"-{os.getpid()}-", stale, count=1)  # the same, by a live pid
    assert live != stale, f"the temporary name {stale} does not carry the writer's pid"
    (out / live).write_bytes(b"being written by a live process")
    assert correct(source, "-o", out / "big.png", "--mode", "fast", "--proxy-size", "64") == 0
    assert files(out) == {"big.png", live}
    assert read_image(out / "big.png").rgb.shape == (384, 512, 3)


# --- resource limits ------------------------------------------------------------------------


@pytest.mark.slow  # a process of its own: importing torch alone takes seconds
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmSize from /proc")
def test_an_allocation_failure_fails_that_file_only(tmp_path):
    # The address space may grow 150 MiB past what Python with torch takes: the small photos
    # fit, the large one in one exact tile (as if the planner had misjudged) cannot. One
    # malloc arena: glibc reserves 64 MiB of address space for each thread that allocates
    # first on a busy arena, which is no memory use and depends on the threads' timing.
    prelude = (
        "import re, resource\n"
        "import exposure_slot.batch, exposure_slot.cli, exposure_slot.corrector\n"
        "status = open('/proc/self/status').read()\n"
        "size = int(re.search(r'VmSize:\\s+(\\d+) kB', status)[1]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + 150 * 2**20, resource.RLIM_INFINITY))"
    )
    rng = np.random.default_rng(0)
    save(tmp_path / "in" / "a_large.png", rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    save(tmp_path / "in" / "b_small.png", COFFEE)
    save(tmp_path / "in" / "c_small.jpg", COFFEE[::2, ::2])
    argv = ["correct", tmp_path / "in", "-o", tmp_path / "out", "--weights", WEIGHTS]
    argv += ["--device", "cpu", "--mode", "exact", "--max-memory", "100000", "-q"]
    argv += ["--threads", "1"]  # a fixed thread count: the same memory on a quiet or busy machine
    result = run(*argv, prelude=prelude, env={"MALLOC_ARENA_MAX": "1"})
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert f"{tmp_path / 'in' / 'a_large.png'}: not enough memory for this image" in stderr
    assert files(tmp_path / "out") == {"b_small.png", "c_small.jpg"}


# --- names, metadata and formats ------------------------------------------------------------


def test_the_longest_file_name_can_be_written(tmp_path):
    name = "a" * (255 - len(".png")) + ".png"  # the longest name most file systems allow
    source = save(tmp_path / "in" / name, COFFEE)
    assert correct(source.parent, "-o", tmp_path / "out") == 0
    assert files(tmp_path / "out") == {name}


def test_a_name_that_is_not_text_is_written_and_printed(tmp_path, capsys):
    source = save(tmp_path / "a.png", ASTRONAUT)
    target = tmp_path / os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not valid UTF-8
    argv = ["slots", source, "-o", target, "--weights", WEIGHTS, "--device", "cpu"]
    assert cli.main([*map(str, argv), "--size", "64", "--height", "32"]) == 0
    assert target.is_file()
    assert capsys.readouterr().out.strip() == f"{tmp_path}/caf\\xe9.png"


def test_metadata_too_long_for_jpeg_is_left_out_with_a_warning(tmp_path, capsys):
    exif = Image.Exif()
    exif[271] = "Canon"
    exif[0x010E] = "x" * 70_000  # ImageDescription: the EXIF block exceeds 64 KB
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b" " * 70_000 + b"</x:xmpmeta>"
    pnginfo = PngImagePlugin.PngInfo()
    pnginfo.add_itxt("XML:com.adobe.xmp", xmp.decode())
    source = save(tmp_path / "a.png", ASTRONAUT, exif=exif, dpi=(300, 300), pnginfo=pnginfo)
    assert correct(source, "-o", tmp_path / "out.jpg") == 0
    warning = f"warning: {tmp_path / 'out.jpg'}: EXIF, XMP metadata left out"
    assert warning in capsys.readouterr().err
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.size == (128, 96) and round(out.info["dpi"][0]) == 300
        assert not out.getexif() and "xmp" not in out.info


def test_a_folder_of_any_format_pillow_reads_is_searched(tmp_path):
    folder = tmp_path / "in"
    save(folder / "a.gif", ASTRONAUT)
    if features.check("avif"):
        save(folder / "b.avif", ASTRONAUT)
    if features.check("jpg_2000"):
        save(folder / "c.jp2", ASTRONAUT)
    assert correct(folder, "-o", tmp_path / "out", "--format", "png") == 0
    assert files(tmp_path / "out") == {f"{p.stem}.png" for p in folder.iterdir()}


def test_an_output_format_we_cannot_write_is_a_usage_error(tmp_path, capsys):
    source = save(tmp_path / "a.jpg", ASTRONAUT)
    assert correct(source, "-o", tmp_path / "fixed.heic") == 2
    assert "cannot write .heic files; use one of bmp, jpeg, jpg, png" in capsys.readouterr().err
    assert files(tmp_path) == {"a.jpg"}  # no folder named fixed.heic


# --- eval and convert -----------------------------------------------------------------------


def test_eval_json_is_valid_json_when_psnr_is_infinite(tmp_path):
    for folder in ("in", "target"):
        save(tmp_path / folder / "a.png", COFFEE)  # identical pair: PSNR is infinite
    out = tmp_path / "scores.json"
    argv = ["eval", tmp_path / "in", tmp_path / "target", "--methods", "identity", "-q"]
    assert cli.main([*map(str, argv), "--json", str(out)]) == 0

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    scores = json.loads(out.read_text(), parse_constant=refuse)
    assert scores["images"][0]["psnr"] is None
    assert scores["images"][0]["ssim"] == pytest.approx(1.0)


def test_unreadable_checkpoints_never_advise_disabling_the_safety(tmp_path, capsys):
    photo = save(tmp_path / "photo.png", COFFEE)
    pickled = tmp_path / "code.pth"
    torch.save({"path": PurePosixPath("a")}, pickled)  # a class weights_only refuses
    for source in (photo, pickled):
        assert cli.main(["convert", str(source), str(tmp_path / "out")]) == 1
        error = capsys.readouterr().err
        assert f"cannot read {source}" in error and "weights_only" not in error


def test_slots_never_replaces_a_file_we_did_not_write(tmp_path, capsys):
    source = save(tmp_path / "a.png", ASTRONAUT)
    other = save(tmp_path / "holiday.png", COFFEE)
    before = other.read_bytes()
    argv = ["slots", source, "--weights", WEIGHTS, "--device", "cpu", "--size", "64"]
    assert cli.main([*map(str, argv), "-o", str(other)]) == 2
    assert "exposure-slot did not write it; use --overwrite" in capsys.readouterr().err
    assert other.read_bytes() == before
    assert cli.main([*map(str, argv), "-o", str(tmp_path / "s.png")]) == 0
    assert cli.main([*map(str, argv), "-o", str(tmp_path / "s.png")]) == 0  # ours: replaced
    assert cli.main([*map(str, argv), "-o", str(other), "--overwrite"]) == 0
    assert other.read_bytes() != before
