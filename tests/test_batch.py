"""Correcting files from Python and the command line's per-file options: correct_file,
--strength, --threads and --report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_cli import ASTRONAUT, COFFEE, SRGB_ICC, WEIGHTS, correct, pixels, save
from test_files import make_exif

from exposure_slot import ImageWriteError, correct_file
from exposure_slot.batch import RESULT_FIELDS, correct_files
from exposure_slot.files import read_image, write_image


def test_correct_file_keeps_what_the_command_line_keeps(tmp_path, corrector):
    source = save(tmp_path / "in" / "a.jpg", ASTRONAUT, exif=make_exif(6), icc_profile=SRGB_ICC)
    assert correct(source, "-o", tmp_path / "cli.jpg") == 0
    assert correct_file(source, tmp_path / "api.jpg", corrector) == tmp_path / "api.jpg"
    assert (tmp_path / "api.jpg").read_bytes() == (tmp_path / "cli.jpg").read_bytes()
    out = Image.open(tmp_path / "api.jpg")
    assert out.size == (96, 128) and out.info["icc_profile"] == SRGB_ICC  # rotated upright
    assert out.getexif()[0x0110] == "EOS R5" and out.getexif()[0x0112] == 1


def test_correct_file_never_replaces_a_file_it_did_not_write(tmp_path, corrector):
    source = save(tmp_path / "a.png", COFFEE)
    foreign = save(tmp_path / "b.png", ASTRONAUT)
    with pytest.raises(ImageWriteError, match="did not write"):
        correct_file(source, foreign, corrector)
    assert np.array_equal(pixels(foreign), ASTRONAUT)
    with pytest.raises(ImageWriteError, match="own input"):
        correct_file(source, source, corrector, overwrite=True)
    correct_file(source, foreign, corrector, overwrite=True)  # asked for
    correct_file(source, foreign, corrector, strength=0)  # ours now: replaced without asking
    assert np.array_equal(pixels(foreign), COFFEE)  # strength 0: the photo itself


def test_only_8_bit_colour_photos_reach_the_corrector_as_uint8(tmp_path, corrector):
    # A grey photo's result becomes grey when written: quantised to uint8 RGB first, it
    # would be rounded twice. It stays float, exactly as the library writes it.
    source = save(tmp_path / "grey.png", ASTRONAUT[..., 0])
    fast = ("--mode", "fast", "--proxy-size", "64")
    assert correct(source, "-o", tmp_path / "out.png", *fast) == 0
    image = read_image(source)
    wanted = tmp_path / "expected.png"
    write_image(wanted, corrector(image.rgb, mode="fast", proxy_size=64), like=image)
    assert (tmp_path / "out.png").read_bytes() == wanted.read_bytes()


def test_strength_on_the_command_line(tmp_path):
    source = save(tmp_path / "a.png", COFFEE // 3)
    assert correct(source, "-o", tmp_path / "zero.png", "--strength", "0") == 0
    assert np.array_equal(pixels(tmp_path / "zero.png"), COFFEE // 3)
    assert correct(source, "-o", tmp_path / "half.png", "--strength", "0.5") == 0
    assert correct(source, "-o", tmp_path / "full.png") == 0
    means = [pixels(tmp_path / f"{n}.png").mean() for n in ("zero", "half", "full")]
    assert means == sorted(means) and means[0] < means[2]
    for bad in ("-1", "2.5", "nan", "x"):
        assert correct(source, "-o", tmp_path / "bad.png", "--strength", bad) == 2
    assert not (tmp_path / "bad.png").exists()


def test_report_has_one_row_per_input(tmp_path, capsys):
    folder = tmp_path / "in"
    save(folder / "a.png", COFFEE)
    save(folder / "b.jpg", ASTRONAUT)
    (folder / "broken.png").write_bytes(b"not a png")
    report = tmp_path / "report.jsonl"
    argv = (folder, "-o", tmp_path / "out", "--report", report, "--threads", "1")
    assert correct(*argv) == 1
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [os.path.basename(r["input"]) for r in rows] == ["a.png", "b.jpg", "broken.png"]
    assert all(list(r) == list(RESULT_FIELDS) for r in rows)
    assert [r["status"] for r in rows] == ["written", "written", "failed"]
    assert "broken.png" in rows[2]["error"] and rows[0]["plan"].startswith("exact")
    assert rows[0]["seconds"] > 0
    assert correct(*argv, "--skip-existing") == 1  # a re-run replaces its own report
    rerun = [json.loads(line)["status"] for line in report.read_text().splitlines()]
    assert rerun == ["skipped", "skipped", "failed"]


def test_correct_files_from_python_gives_the_command_lines_rows_and_files(tmp_path, corrector):
    folder = tmp_path / "in"
    save(folder / "a.png", COFFEE)
    save(folder / "sub" / "b.jpg", ASTRONAUT, exif=make_exif(6))
    (folder / "broken.png").write_bytes(b"not a png")
    assert correct(folder, "-r", "-o", tmp_path / "cli", "--report", tmp_path / "cli.jsonl") == 1
    report = tmp_path / "api.jsonl"
    rows = correct_files([folder], tmp_path / "api", corrector, recursive=True, report=report)
    cli_rows = [json.loads(line) for line in (tmp_path / "cli.jsonl").read_text().splitlines()]
    assert [json.loads(line) for line in report.read_text().splitlines()] == rows
    keep = ("status", "plan")
    assert [{k: r[k] for k in keep} for r in rows] == [{k: r[k] for k in keep} for r in cli_rows]
    assert [r["status"] for r in rows] == ["written", "failed", "written"]  # a, broken, sub/b
    assert "broken.png" in rows[1]["error"]
    for name in ("a.png", "sub/b.jpg"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    again = correct_files([folder], tmp_path / "api", corrector, recursive=True, skip_existing=True)
    assert [r["status"] for r in again] == ["skipped", "failed", "skipped"]


def test_two_workers_write_the_same_files_and_rows_in_order(tmp_path):
    folder = tmp_path / "in"
    for index in range(4):
        save(folder / f"{index}.png", np.roll(ASTRONAUT, 20 * index, axis=1))
    (folder / "2_broken.png").write_bytes(b"not a png")
    fast = ("--mode", "fast", "--proxy-size", "64")
    for workers in ("1", "2"):
        report = tmp_path / f"report{workers}.jsonl"
        argv = (folder, "-o", tmp_path / workers, "--workers", workers, "--report", report)
        assert correct(*argv, *fast) == 1
    rows = [
        [json.loads(line) for line in (tmp_path / f"report{w}.jsonl").read_text().splitlines()]
        for w in ("1", "2")
    ]
    names = ["0.png", "1.png", "2.png", "2_broken.png", "3.png"]
    for run in rows:
        assert [os.path.basename(r["input"]) for r in run] == names
        assert [r["status"] for r in run] == ["written"] * 3 + ["failed", "written"]
    for name in ("0.png", "1.png", "2.png", "3.png"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()
    assert correct(folder, "-o", tmp_path / "ray", "--workers", "2", "--ray") == 2


def test_report_never_replaces_another_file(tmp_path, capsys):
    source = save(tmp_path / "a.png", COFFEE)
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"my": "notes"}\n')
    assert correct(source, "-o", tmp_path / "out.png", "--report", notes) == 1
    assert "not a report" in capsys.readouterr().err
    assert notes.read_text() == '{"my": "notes"}\n' and not (tmp_path / "out.png").exists()
    assert correct(source, "-o", tmp_path / "out.png", "--threads", "0") == 2


def test_the_command_line_sets_a_passive_wait_before_torch_loads(tmp_path):
    code = (
        "import os, sys\n"
        "from exposure_slot.launch import main\n"
        "assert 'torch' not in sys.modules\n"
        "status = main(['info', '--weights', sys.argv[1]])\n"
        "print(os.environ['OMP_WAIT_POLICY'], status)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run(
        [sys.executable, "-c", code, WEIGHTS], capture_output=True, text=True, env=env
    )
    assert done.stdout.strip().splitlines()[-1] == "PASSIVE 0", done.stderr


def test_standard_input_and_output(tmp_path):
    source = save(tmp_path / "a.png", COFFEE)
    assert correct(source, "-o", tmp_path / "ref.png") == 0
    command = [sys.executable, "-m", "exposure_slot", "correct", "-", "-o", "-"]
    done = subprocess.run(
        [*command, "--weights", WEIGHTS, "--device", "cpu"],
        input=source.read_bytes(),
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (tmp_path / "ref.png").read_bytes()  # PNG in, the same PNG out
    assert correct("-", source, "-o", tmp_path / "two.png") == 2  # one image only


@pytest.mark.parametrize("door", ["module", "command line"])
def test_every_train_option_has_help_and_shows_its_default(door, capsys):
    from exposure_slot import cli, train_config

    parser = train_config.build_parser()
    if door == "module":
        shown_help = parser.format_help()
    else:  # exposure-slot train --help: the same declarations, in the command line's parser
        assert cli.main(["train", "--help"]) == 0
        shown_help = capsys.readouterr().out
    text = " ".join(shown_help.replace("'", "").split())  # undo line wrapping
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help"
        if action.default not in (None, False, [], "==SUPPRESS=="):
            shown = " ".join(f"(default: {action.default})".replace("'", "").split())
            assert shown in text, action.option_strings


def test_model_cards_name_no_path_of_this_machine(tmp_path):
    import exposure_slot
    from exposure_slot import ExposureCorrector

    package = str(os.path.dirname(exposure_slot.__file__))
    for weights in ("default", WEIGHTS):
        folder = ExposureCorrector(weights, device="cpu").save_pretrained(tmp_path / "w")
        card = (folder / "README.md").read_text()
        assert package not in card and str(tmp_path) not in card
        assert os.path.dirname(WEIGHTS) not in card
        assert ("bundled with exposure-slot" in card) == (weights == "default")
        for name in os.listdir(folder):
            os.remove(folder / name)


def test_earlier_results_beside_originals_are_not_inputs_of_a_glob(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "shots" / "a.png", COFFEE)
    assert correct("shots", "-o", "shots") == 0  # beside: shots/a_corrected.png
    save(tmp_path / "shots" / "b_corrected.png", ASTRONAUT)  # only named like a result
    assert correct("shots/*.png", "-o", "fixed") == 0
    assert sorted(p.name for p in (tmp_path / "fixed").iterdir()) == ["a.png", "b_corrected.png"]
    assert correct("fixed", "-o", "again") == 0  # a folder of results only: taken as inputs
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["a.png", "b_corrected.png"]
