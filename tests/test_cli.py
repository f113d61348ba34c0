"""The ``exposure-slot`` command line on real files: batches, outputs, metadata, failures.

Most tests call :func:`exposure_slot.cli.main` in this process; what needs a process of its
own (Ctrl-C, file-size limits, dropped privileges, the installed script) runs one. Weights are
the level-2 parity checkpoint on the CPU, so results can be compared with the library's.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from skimage import data
from test_files import bomb_png, make_exif, read_cv2_16bit, save_cv2_16bit

from exposure_slot import CompileError, ExposureCorrector, __version__, cli
from exposure_slot.files import from_uint, read_image, to_uint, write_image
from exposure_slot.visualize import TITLE_BAR, palette

WEIGHTS = str(Path(__file__).parent / "data" / "level2_seed0.pth")
SCRIPT = Path(sys.executable).with_name("exposure-slot")
# Non-square crops of real photos, small so that the network runs in milliseconds.
ASTRONAUT = np.ascontiguousarray(data.astronaut()[30:126, 170:298])  # 96×128
COFFEE = np.ascontiguousarray(data.coffee()[100:164, 200:296])  # 64×96
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def correct(*args: object) -> int:
    """``exposure-slot correct ARGS`` in this process, with the parity weights on the CPU."""
    threads = str(torch.get_num_threads())  # as the library's results here: the same last bit
    argv = ["correct", *map(str, args), "--weights", WEIGHTS, "--device", "cpu", "-q"]
    return cli.main([*argv, "--threads", threads])


def save(path: Path, pixels: np.ndarray, **params: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **params)
    return path


def files(folder: Path) -> set[str]:
    """Every file below ``folder``, as relative POSIX paths."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def hashes(folder: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in files(folder)
    }


def expected_file(tmp_path: Path, corrector: ExposureCorrector, source: Path, suffix: str) -> Path:
    """What the library writes for ``source``: the reference for a CLI output."""
    image = read_image(source)
    target = tmp_path / f"expected{suffix}"
    write_image(target, corrector(image.rgb), like=image)
    return target


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


# --- inputs and outputs ---------------------------------------------------------------------


def test_one_file_to_a_file_of_another_format(tmp_path, corrector):
    source = save(tmp_path / "photo.jpg", ASTRONAUT, quality=90)
    assert correct(source, "-o", tmp_path / "fixed.png") == 0
    assert Image.open(tmp_path / "fixed.png").format == "PNG"
    wanted = to_uint(corrector(read_image(source).rgb), 8)
    assert np.array_equal(pixels(tmp_path / "fixed.png"), wanted)
    assert files(tmp_path) == {"photo.jpg", "fixed.png"}


def test_folder_with_recursive_mirrors_sub_folders(tmp_path):
    inputs = tmp_path / "in"
    save(inputs / "a.jpg", ASTRONAUT)
    save(inputs / "trip" / "b.png", COFFEE)
    save(inputs / "trip" / "day 2" / "c.TIF", COFFEE)
    save(inputs / ".hidden.jpg", COFFEE)
    save(inputs / ".cache" / "d.jpg", COFFEE)
    (inputs / "notes.txt").write_text("not a photo")

    assert correct(inputs, "-o", tmp_path / "flat") == 0
    assert files(tmp_path / "flat") == {"a.jpg"}
    assert correct(inputs, "-o", tmp_path / "deep", "--recursive") == 0
    assert files(tmp_path / "deep") == {"a.jpg", "trip/b.png", "trip/day 2/c.TIF"}
    assert Image.open(tmp_path / "deep" / "trip" / "day 2" / "c.TIF").format == "TIFF"


def test_globs_pick_files_and_mirror_below_their_folder(tmp_path):
    inputs = tmp_path / "in"
    save(inputs / "a.jpg", ASTRONAUT)
    save(inputs / "b.png", COFFEE)
    save(inputs / "x" / "c.png", COFFEE)
    save(inputs / "y" / "c.png", ASTRONAUT)  # same name: only mirroring keeps both

    assert correct(f"{inputs}/*.jpg", "-o", tmp_path / "jpg") == 0
    assert files(tmp_path / "jpg") == {"a.jpg"}
    assert correct(f"{inputs}/**/*.png", "-o", tmp_path / "png") == 0
    assert files(tmp_path / "png") == {"b.png", "x/c.png", "y/c.png"}
    assert not np.array_equal(
        pixels(tmp_path / "png" / "x" / "c.png"), pixels(tmp_path / "png" / "y" / "c.png")
    )


def test_a_file_named_twice_runs_once(tmp_path, capsys):
    source = save(tmp_path / "in" / "a.jpg", ASTRONAUT)
    assert (
        cli.main(
            [
                "correct",
                str(source),
                str(source.parent),
                "-o",
                str(tmp_path / "out"),
                "--weights",
                WEIGHTS,
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert "1 written, 0 skipped, 0 failed" in capsys.readouterr().err
    assert files(tmp_path / "out") == {"a.jpg"}


def test_progress_bar_reports_images_per_second(tmp_path, capsys):
    save(tmp_path / "in" / "a.jpg", ASTRONAUT)
    save(tmp_path / "in" / "b.png", COFFEE)
    argv = ["correct", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", WEIGHTS]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "img/s" in err and "2/2" in err
    assert "2 written, 0 skipped, 0 failed" in err


def test_skip_existing_leaves_outputs_alone(tmp_path):
    save(tmp_path / "in" / "a.jpg", ASTRONAUT)
    save(tmp_path / "in" / "b.jpg", COFFEE)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.jpg").write_bytes(b"an earlier result")
    assert correct(tmp_path / "in", "-o", tmp_path / "out", "--skip-existing") == 0
    assert (tmp_path / "out" / "a.jpg").read_bytes() == b"an earlier result"
    assert Image.open(tmp_path / "out" / "b.jpg").size == (96, 64)
    # Without: our own b.jpg is replaced, a.jpg (not written by us) is refused, named.
    b_before = (tmp_path / "out" / "b.jpg").stat().st_mtime_ns
    assert correct(tmp_path / "in", "-o", tmp_path / "out") == 1
    assert (tmp_path / "out" / "a.jpg").read_bytes() == b"an earlier result"
    assert (tmp_path / "out" / "b.jpg").stat().st_mtime_ns > b_before
    assert correct(tmp_path / "in", "-o", tmp_path / "out", "--overwrite") == 0
    assert Image.open(tmp_path / "out" / "a.jpg").size == (128, 96)


def test_suffix_and_format(tmp_path):
    save(tmp_path / "in" / "a.jpg", ASTRONAUT)
    assert correct(tmp_path / "in", "-o", tmp_path / "out", "--suffix", "_fixed") == 0
    assert correct(tmp_path / "in", "-o", tmp_path / "out", "--format", "webp") == 0
    assert files(tmp_path / "out") == {"a_fixed.jpg", "a.webp"}
    assert Image.open(tmp_path / "out" / "a.webp").format == "WEBP"


def test_quality_sets_the_jpeg_quantisation(tmp_path):
    source = save(tmp_path / "a.png", ASTRONAUT)
    assert correct(source, "-o", tmp_path / "q30.jpg", "--quality", "30") == 0
    assert correct(source, "-o", tmp_path / "q95.jpg") == 0
    Image.fromarray(ASTRONAUT).save(tmp_path / "pillow30.jpg", quality=30)
    tables = Image.open(tmp_path / "q30.jpg").quantization
    assert tables == Image.open(tmp_path / "pillow30.jpg").quantization
    assert tables != Image.open(tmp_path / "q95.jpg").quantization
    assert (tmp_path / "q30.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size


def test_dtype_and_mode_options_reach_the_corrector(tmp_path, corrector, caplog):
    source = save(tmp_path / "a.png", ASTRONAUT)
    rgb = read_image(source).rgb
    default = to_uint(corrector(rgb), 8)
    caplog.set_level("INFO", logger="exposure_slot")
    assert (
        correct(source, "-o", tmp_path / "tiled.png", "--mode", "exact", "--tile-size", "64") == 0
    )
    assert "exact (tile 64, float32) for 128×96: requested" in caplog.text
    assert np.array_equal(pixels(tmp_path / "tiled.png"), to_uint(corrector(rgb, tile_size=64), 8))
    assert correct(source, "-o", tmp_path / "fast.png", "--mode", "fast", "--proxy-size", "64") == 0
    # An 8-bit photo reaches the corrector as its uint8 samples (fast mode's 8-bit strip
    # path): the library's answer for them, within a last bit of the float path's.
    wanted = corrector(to_uint(rgb, 8), mode="fast", proxy_size=64)
    assert np.array_equal(pixels(tmp_path / "fast.png"), wanted)
    as_float = to_uint(corrector(rgb, mode="fast", proxy_size=64), 8)
    assert np.abs(wanted.astype(int) - as_float).max() <= 1
    assert not np.array_equal(wanted, default)
    argv = ["--mode", "exact", "--tile-size", "64", "--max-memory", "1"]
    assert correct(source, "-o", tmp_path / "bounded.png", *argv) == 0
    assert "sized for 1 MiB" in caplog.text and "recomputed for the rest" in caplog.text
    assert np.array_equal(pixels(tmp_path / "bounded.png"), pixels(tmp_path / "tiled.png"))
    # bfloat16 is slow on CPUs without native support: a thumbnail is enough.
    small = save(tmp_path / "small.png", ASTRONAUT[::4, ::4])
    assert correct(small, "-o", tmp_path / "bf16.png", "--dtype", "bfloat16") == 0
    rgb = read_image(small).rgb
    wanted = to_uint(ExposureCorrector(WEIGHTS, device="cpu", dtype="bfloat16")(rgb), 8)
    assert np.array_equal(pixels(tmp_path / "bf16.png"), wanted)
    assert not np.array_equal(wanted, to_uint(corrector(rgb), 8))


def test_max_pixels_guards_against_huge_images(tmp_path, capsys):
    source = save(tmp_path / "a.png", ASTRONAUT)
    assert correct(source, "-o", tmp_path / "refused.png", "--max-pixels", "10000") == 1
    assert "128×96 = 12,288 pixels, more than the limit of 10,000" in capsys.readouterr().err
    assert correct(source, "-o", tmp_path / "allowed.png", "--max-pixels", "0") == 0
    assert files(tmp_path) == {"a.png", "allowed.png"}


# --- inputs are never overwritten, nothing lands outside the output ---------------------------


def test_output_beside_the_inputs_gets_a_suffix_and_reruns_leave_results_alone(tmp_path):
    inputs = tmp_path / "in"
    save(inputs / "a.jpg", ASTRONAUT)
    save(inputs / "sub" / "b.png", COFFEE)
    before = hashes(inputs)
    assert correct(inputs, "-o", inputs, "-r") == 0
    assert files(inputs) == {"a.jpg", "a_corrected.jpg", "sub/b.png", "sub/b_corrected.png"}
    results = hashes(inputs)
    # A second run neither takes the results for inputs nor touches them with --skip-existing.
    assert correct(inputs, "-o", inputs, "-r", "--skip-existing") == 0
    assert hashes(inputs) == results
    assert {name: results[name] for name in before} == before


def test_inputs_are_never_overwritten(tmp_path, capsys):
    source = save(tmp_path / "a.jpg", ASTRONAUT)
    original = source.read_bytes()
    assert correct(source, "-o", source) == 1
    assert correct(tmp_path, "-o", tmp_path, "--suffix", "") == 1
    (tmp_path / "link.jpg").symlink_to(source)
    assert correct(source, "-o", tmp_path / "link.jpg") == 1
    err = capsys.readouterr().err
    assert err.count(f"{source}: refusing to overwrite input") == 3
    assert source.read_bytes() == original
    assert files(tmp_path) == {"a.jpg", "link.jpg"}


def test_suffix_cannot_leave_the_output_folder(tmp_path):
    source = save(tmp_path / "in" / "a.jpg", ASTRONAUT)
    escape = f"{os.sep}..{os.sep}..{os.sep}escaped"
    assert correct(source, "-o", tmp_path / "in" / "out", "--suffix", escape) == 2
    assert files(tmp_path) == {"in/a.jpg"}


def test_a_glob_through_parent_folders_writes_inside_the_output(tmp_path, monkeypatch):
    save(tmp_path / "photos" / "a.jpg", ASTRONAUT)
    (tmp_path / "work" / "here").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work" / "here")
    assert correct("../../p*/../photos/*.jpg", "-o", "out") == 0
    assert files(tmp_path) == {"photos/a.jpg", "work/here/out/a.jpg"}


def test_output_file_name_for_several_inputs_is_a_usage_error(tmp_path, capsys):
    save(tmp_path / "a.jpg", ASTRONAUT)
    save(tmp_path / "b.jpg", COFFEE)
    assert correct(tmp_path / "a.jpg", tmp_path / "b.jpg", "-o", tmp_path / "out.jpg") == 2
    assert "give a folder to -o" in capsys.readouterr().err
    assert files(tmp_path) == {"a.jpg", "b.jpg"}


# --- exit status and failures ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["correct", "a.jpg"],  # no -o
        ["correct", "a.jpg", "-o", "out", "--quality", "0"],
        ["correct", "a.jpg", "-o", "out", "--dtype", "float8"],
        ["correct", "a.jpg", "-o", "out", "--dtype", "float16", "--device", "cpu"],
        ["correct", "a.jpg", "-o", "out", "--device", "abacus"],
        ["correct", "a.jpg", "-o", "out", "--mode", "exact", "--tile-size", "30"],
        ["correct", "a.jpg", "-o", "out", "--max-memory", "0"],
        ["correct", "a.jpg", "-o", "out", "--format", "gif"],
        ["correct", "a.jpg", "-o", "out.png", "--format", "jpg"],
        ["correct", "a.jpg", "-o", "notes.txt"],  # an existing file that is not a folder
        ["slots", "a.jpg", "-o", "a.jpg"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2_and_write_nothing(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "a.jpg", ASTRONAUT)
    (tmp_path / "notes.txt").write_text("notes")
    before = hashes(tmp_path)
    assert cli.main([*argv, "--weights", WEIGHTS]) == 2
    assert "error" in capsys.readouterr().err
    assert hashes(tmp_path) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_a_usage_error(tmp_path, capsys):
    source = save(tmp_path / "a.jpg", ASTRONAUT)
    assert cli.main(["correct", str(source), "-o", str(tmp_path / "out"), "--device", "cuda"]) == 2
    assert "--device cuda: no such device" in capsys.readouterr().err


def test_missing_inputs_and_weights_exit_1(tmp_path, capsys):
    assert correct(tmp_path / "nothing.jpg", "-o", tmp_path / "out.png") == 1
    assert f"{tmp_path / 'nothing.jpg'}: no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert correct(tmp_path / "empty", "-o", tmp_path / "out") == 1
    assert "no image files in this folder" in capsys.readouterr().err
    assert correct(tmp_path / "*.png", "-o", tmp_path / "out") == 1
    assert "no files match this pattern" in capsys.readouterr().err
    source = save(tmp_path / "a.jpg", ASTRONAUT)
    argv = ["correct", str(source), "-o", str(tmp_path / "out"), "--weights", "no-such.pth"]
    assert cli.main(argv) == 1
    assert "cannot find weights 'no-such.pth'" in capsys.readouterr().err
    assert files(tmp_path) == {"a.jpg"}


def test_one_bad_file_does_not_stop_the_batch(tmp_path, capsys):
    save(tmp_path / "in" / "a.jpg", ASTRONAUT)
    (tmp_path / "in" / "b.png").write_text("just text")
    save(tmp_path / "in" / "c.png", COFFEE)
    assert correct(tmp_path / "in", "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'in' / 'b.png'}: not an image file" in err
    assert files(tmp_path / "out") == {"a.jpg", "c.png"}


# --- what the files keep --------------------------------------------------------------------


def test_orientation_icc_and_exif_round_trip(tmp_path, corrector):
    # Stored sideways with Orientation 6: the upright photo is ASTRONAUT.
    stored = np.ascontiguousarray(np.rot90(ASTRONAUT, 1))
    exif = make_exif(orientation=6).tobytes()
    source = save(tmp_path / "in.jpg", stored, exif=exif, icc_profile=SRGB_ICC, quality=95)
    assert correct(source, "-o", tmp_path / "out.jpg") == 0
    out = Image.open(tmp_path / "out.jpg")
    assert out.size == (128, 96)  # upright
    assert out.info["icc_profile"] == SRGB_ICC
    tags = out.getexif()
    assert tags[274] == 1 and (tags[271], tags[272]) == ("Canon", "EOS R5")
    assert tags.get_ifd(0x8769)[0x9003] == "2021:02:03 04:05:06"
    reference = expected_file(tmp_path, corrector, source, ".jpg")
    assert (tmp_path / "out.jpg").read_bytes() == reference.read_bytes()


def test_alpha_is_carried_bit_exact(tmp_path, corrector):
    rng = np.random.default_rng(5)
    alpha8 = rng.integers(0, 256, ASTRONAUT.shape[:2], dtype=np.uint8)
    alpha16 = rng.integers(0, 65536, COFFEE.shape[:2], dtype=np.uint16)
    save(tmp_path / "in" / "rgba.png", np.dstack([ASTRONAUT, alpha8]))
    save(tmp_path / "in" / "rgba.tif", np.dstack([ASTRONAUT, alpha8]))
    save_cv2_16bit(tmp_path / "in" / "rgba16.png", COFFEE.astype(np.uint16) * 257, alpha16)
    assert correct(tmp_path / "in", "-o", tmp_path / "out") == 0
    for name in ("rgba.png", "rgba.tif"):
        out = pixels(tmp_path / "out" / name)
        assert out.shape == (96, 128, 4) and np.array_equal(out[..., 3], alpha8), name
        assert np.array_equal(out[..., :3], to_uint(corrector(from_uint(ASTRONAUT)), 8)), name
    out16 = read_cv2_16bit(tmp_path / "out" / "rgba16.png")
    assert np.array_equal(out16[..., 3], alpha16)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_in_16bit_out_without_8bit_rounding(tmp_path, corrector, ext):
    rng = np.random.default_rng(7)
    deep = (COFFEE.astype(np.uint16) * 257 + rng.integers(0, 257, COFFEE.shape)).astype(np.uint16)
    save_cv2_16bit(tmp_path / f"in{ext}", deep)
    assert correct(tmp_path / f"in{ext}", "-o", tmp_path / f"out{ext}") == 0
    out = read_cv2_16bit(tmp_path / f"out{ext}")
    assert np.array_equal(out, to_uint(corrector(from_uint(deep)), 16))
    rounded = to_uint(corrector(from_uint((deep >> 8).astype(np.uint8))), 16)
    assert not np.array_equal(out, rounded)  # the low byte of the input reached the network


def test_grayscale_in_grayscale_out(tmp_path):
    source = save(tmp_path / "gray.png", data.camera()[100:164, 100:196])
    assert correct(source, "-o", tmp_path / "out.png") == 0
    assert Image.open(tmp_path / "out.png").mode == "L"


# --- slots and info -------------------------------------------------------------------------


def test_slots_picture_shows_each_level(tmp_path, corrector):
    source = save(tmp_path / "a.png", ASTRONAUT)
    argv = ["slots", str(source), "-o", str(tmp_path / "slots.png"), "--height", "96"]
    assert cli.main([*argv, "--weights", WEIGHTS, "--device", "cpu"]) == 0
    sheet = pixels(tmp_path / "slots.png")
    assert sheet.shape[0] == 2 * (TITLE_BAR + 96) and sheet.shape[1] > 2 * 128
    maps = corrector.slot_maps(read_image(source).rgb)
    for level in (0, 1):
        top = level * (TITLE_BAR + 96) + TITLE_BAR
        labels = sheet[top : top + 96, 128:256]
        colours = np.round(palette(maps.levels[level].shape[0]) * 255).astype(np.uint8)
        assert np.array_equal(labels, colours[maps.labels(level)]), level


def test_info_names_version_device_dtype_and_weights(tmp_path, capsys):
    assert cli.main(["info", "--weights", WEIGHTS, "--device", "cpu", "--dtype", "bfloat16"]) == 0
    out = capsys.readouterr().out
    sha = hashlib.sha256(Path(WEIGHTS).read_bytes()).hexdigest()
    assert f"exposure-slot {__version__}" in out
    assert "device: cpu\n" in out and "\ndtype: bfloat16\n" in out
    assert "fast-mode proxy dtype: bfloat16\n" in out  # an explicit dtype is used for both
    assert "weights: level2_seed0.pth\n" in out and f"sha256: {sha}\n" in out
    assert "licence: not stated" in out


def test_info_on_the_default_weights_gives_their_licence(capsys):
    corrector = ExposureCorrector(device="cpu")
    assert cli.main(["info", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    info = corrector.weights_info
    assert f"weights: {info.name}\n" in out and f"sha256: {info.sha256}\n" in out
    assert f"licence: {info.licence}\n" in out and info.licence
    proxy = str(corrector.proxy_dtype).removeprefix("torch.")
    assert "\ndtype: float32\n" in out and f"fast-mode proxy dtype: {proxy}\n" in out


# --- in a process of its own ----------------------------------------------------------------


def test_module_and_script_are_the_same_command():
    # The same parser and exit status: a usage error (no -o) gives the same message and 2.
    module, script = (
        subprocess.run([*command, "correct", "a.jpg"], capture_output=True, text=True, timeout=300)
        for command in ([sys.executable, "-m", "exposure_slot"], [str(SCRIPT)])
    )
    assert module.returncode == script.returncode == 2
    assert module.stderr == script.stderr
    assert module.stderr.startswith("usage: exposure-slot correct")
    assert "the following arguments are required: -o/--output" in module.stderr


def run_cli(*args: object, prelude: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m exposure_slot ARGS`` in a new process; ``prelude`` runs first (in the same
    process, which then execs the CLI: limits and dropped privileges stay in force)."""
    run_module = "os.execv(sys.executable, [sys.executable, '-m', 'exposure_slot', *sys.argv[1:]])"
    code = f"import os, sys\n{prelude}\n{run_module}"
    argv = [sys.executable, "-c", code, "correct", *map(str, args), "--weights", WEIGHTS]
    return subprocess.run(
        [*argv, "--device", "cpu"], capture_output=True, text=True, timeout=timeout
    )


def test_mixed_folder_of_good_and_broken_files(tmp_path):
    inputs = tmp_path / "in"
    save(inputs / "good.jpg", ASTRONAUT, exif=make_exif(orientation=3).tobytes())
    save(inputs / "alpha.png", np.dstack([COFFEE, np.full(COFFEE.shape[:2], 200, np.uint8)]))
    save(inputs / "sub" / "web.webp", ASTRONAUT)
    save_cv2_16bit(inputs / "sub" / "deep.tif", COFFEE.astype(np.uint16) * 257)
    broken = {
        "empty.jpg": "the file is empty",
        "text.png": "not an image file",
        "sub/truncated.jpg": "truncated",
        "sub/truncated.png": "truncated",
        "bomb.png": "more than the limit",
    }
    (inputs / "empty.jpg").write_bytes(b"")
    (inputs / "text.png").write_text("hello")
    for ext in (".jpg", ".png"):
        whole = save(tmp_path / f"whole{ext}", ASTRONAUT).read_bytes()
        (inputs / "sub" / f"truncated{ext}").write_bytes(whole[: len(whole) // 2])
        (tmp_path / f"whole{ext}").unlink()
    (inputs / "bomb.png").write_bytes(bomb_png(60000, 60000))
    before = hashes(tmp_path)

    result = run_cli(inputs, "-o", tmp_path / "out", "-r")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "exposure-slot: error" in line]
    assert len(errors) == len(broken)
    for name, reason in broken.items():
        assert any(str(inputs / name) in line and reason in line for line in errors), name
    assert "4 written, 0 skipped, 5 failed" in result.stderr
    written = {"good.jpg", "alpha.png", "sub/deep.tif", "sub/web.webp"}
    assert files(tmp_path / "out") == written  # and no temporary files
    assert files(tmp_path) == set(before) | {f"out/{name}" for name in written}
    assert {name: digest for name, digest in hashes(tmp_path).items() if name in before} == before
    assert Image.open(tmp_path / "out" / "good.jpg").size == (128, 96)


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file-size limits")
def test_full_disk_fails_that_file_only(tmp_path):
    # The CLI's files may not exceed 30 kB: a large output fails half-way (EFBIG, as when the
    # disk fills up), small ones fit.
    prelude = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, resource.RLIM_INFINITY))"
    )
    save(tmp_path / "in" / "a_small.jpg", COFFEE)
    large = data.astronaut()[:256, :256].astype(np.uint16) * 257
    save_cv2_16bit(tmp_path / "in" / "b_large.png", large)
    save(tmp_path / "in" / "c_small.jpg", COFFEE[::2, ::2])
    result = run_cli(tmp_path / "in", "-o", tmp_path / "out", prelude=prelude)
    assert result.returncode == 1, result.stderr
    assert f"cannot write {tmp_path / 'out' / 'b_large.png'}: File too large" in result.stderr
    assert files(tmp_path / "out") == {"a_small.jpg", "c_small.jpg"}


def drop_file_permission_override() -> str:
    """Prelude making root subject to file modes (drops CAP_DAC_OVERRIDE/READ_SEARCH)."""
    if os.geteuid() != 0:
        return ""
    return (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "for cap in (1, 2):\n"
        "    assert libc.prctl(24, cap, 0, 0, 0) == 0, ctypes.get_errno()  # PR_CAPBSET_DROP"
    )


@pytest.mark.skipif(sys.platform != "linux", reason="uses Linux capabilities when root")
def test_permission_error_fails_that_file_only(tmp_path):
    save(tmp_path / "in" / "a.jpg", ASTRONAUT)
    save(tmp_path / "in" / "locked" / "b.jpg", COFFEE)
    save(tmp_path / "in" / "z.jpg", COFFEE)
    locked = tmp_path / "out" / "locked"
    locked.mkdir(parents=True)
    locked.chmod(0o555)
    try:
        prelude = drop_file_permission_override()
        result = run_cli(tmp_path / "in", "-o", tmp_path / "out", "-r", prelude=prelude)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert f"cannot write {locked / 'b.jpg'}: Permission denied" in result.stderr
    assert files(tmp_path / "out") == {"a.jpg", "z.jpg"}


def test_ctrl_c_mid_batch_leaves_only_complete_outputs(tmp_path, corrector):
    inputs = tmp_path / "in"
    photo = data.astronaut()
    crops = [photo[y : y + 160, x : x + 224] for y in (0, 150, 300) for x in range(0, 280, 28)]
    for i, crop in enumerate(crops):
        save(inputs / f"{i:02d}.png", crop)
    before = hashes(inputs)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "exposure_slot", "correct", str(inputs), "-o", str(out)]
    with (tmp_path / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--weights", WEIGHTS, "--device", "cpu", "-q"], stderr=stderr
        )
        deadline = time.monotonic() + 300
        while not (out.is_dir() and any(p.name[0] != "." for p in out.iterdir())):
            assert process.poll() is None and time.monotonic() < deadline, "no output appeared"
            time.sleep(0.01)
        # One output is complete; press Ctrl-C while another is being written, if caught
        # before half of the batch is done.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            names = [p.name for p in out.iterdir()]
            if any(n[0] == "." for n in names) or len(names) >= len(crops) // 2:
                break
            time.sleep(0.001)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == cli.INTERRUPTED
    assert "interrupted" in (tmp_path / "stderr.txt").read_text()
    written = files(out)
    assert 1 <= len(written) < len(crops)
    assert all(not name.startswith(".") for name in written)  # no temporary file left
    for name in written:  # each output complete: identical to the library's result
        wanted = to_uint(corrector(read_image(inputs / name).rgb), 8)
        assert np.array_equal(pixels(out / name), wanted), name
    assert hashes(inputs) == before


def test_output_into_a_closed_pipe_is_not_an_error() -> None:
    """`exposure-slot info | head -1`: the reader stops early; no error, exit status 0."""
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    writer = subprocess.run(
        [sys.executable, "-m", "exposure_slot", "info"],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )
    reader.stdin.close()
    reader.wait(timeout=60)
    assert writer.returncode == 0, writer.stderr
    assert "Broken pipe" not in writer.stderr


@pytest.mark.slow
def test_compile_option_gives_the_eager_result(tmp_path, corrector):
    """--compile (torch.compile of the local stages): the same picture as the eager network,
    in exact and fast mode. Slow: compiling takes about a minute here."""
    source = save(tmp_path / "a.png", ASTRONAUT)
    rgb = read_image(source).rgb
    for mode in ("exact", "fast"):
        out = tmp_path / f"{mode}.png"
        proxy = {"proxy_size": 64} if mode == "fast" else {}
        argv = ["-o", out, "--compile", "--mode", mode]
        argv += ["--proxy-size", "64"] if proxy else []
        assert correct(source, *argv) == 0
        wanted = to_uint(corrector(rgb, mode=mode, **proxy), 8)
        assert np.abs(pixels(out).astype(int) - wanted).max() <= 1


@pytest.mark.slow
def test_a_failed_compile_is_a_clear_error(monkeypatch, level2_path):
    """A machine whose C++ compiler is missing: CompileError (an OSError) naming the cause
    and the way out, not inductor's traceback."""
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor, "force_disable_caches", True)
    monkeypatch.setattr(inductor.cpp, "cxx", (None, "/nonexistent/g++"))
    torch.compiler.reset()  # forget code compiled by earlier tests in this process
    corrector = ExposureCorrector(level2_path, device="cpu", dtype="float32", compile=True)
    try:
        with pytest.raises(CompileError, match="without compile=True") as caught:
            corrector(ASTRONAUT, mode="exact")
    finally:
        torch.compiler.reset()
    assert isinstance(caught.value, OSError)
