"""Ray tests, run by tests/test_ray.py inside a private network namespace (only loopback).

Not collected on its own (no ``test_`` prefix): a local Ray cluster binds to the machine's
own interface address, and these tests must send nothing beyond loopback. Each test uses a
real local cluster (``ray.init(num_cpus=2)``), shared by the module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from skimage import data
from test_files import make_exif, save_cv2_16bit

from exposure_slot import ExposureCorrector, cli
from exposure_slot.distributed import RESULT_FIELDS, CorrectFiles, CorrectImages, correct_files

ray = pytest.importorskip("ray")
if [name for _, name in socket.if_nameindex()] != ["lo"]:
    pytest.skip("Ray tests run only in a private network namespace", allow_module_level=True)

WEIGHTS = str(Path(__file__).parent / "data" / "level2_seed0.pth")
THREADS = torch.get_num_threads()
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def photo_folder(root: Path) -> Path:
    """Good photos of several kinds (8-bit with orientation and ICC, 16-bit, alpha) and
    broken files, some in a sub-folder."""
    folder = root / "in"
    (folder / "trip").mkdir(parents=True)
    astronaut = data.astronaut()[::4, ::4]
    Image.fromarray(astronaut).save(
        folder / "rotated.jpg", exif=make_exif(6), icc_profile=SRGB_ICC, quality=92
    )
    coffee = data.coffee()[::4, ::4]
    save_cv2_16bit(folder / "trip" / "deep.png", coffee.astype(np.uint16) * 257)
    rgba = np.dstack([coffee, np.linspace(0, 255, coffee.shape[1], dtype=np.uint8)[None].repeat(
        coffee.shape[0], 0)])  # fmt: skip
    Image.fromarray(rgba, "RGBA").save(folder / "trip" / "alpha.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (folder / "trip" / "empty.png").write_bytes(b"")
    return folder


def files(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the sha256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_outputs_equal_the_command_line_and_every_input_is_reported(tmp_path):
    inputs = photo_folder(tmp_path)
    # --threads 1: as many as each actor has, so sums over pixels run in the same order
    argv = ["correct", str(inputs), "-o", str(tmp_path / "cli"), "-r", "-q", "--threads", "1"]
    try:
        assert cli.main([*argv, "--weights", WEIGHTS, "--device", "cpu"]) == 1  # 2 broken files
    finally:
        torch.set_num_threads(THREADS)
    rows = correct_files(
        [str(inputs)], tmp_path / "ray", recursive=True, weights=WEIGHTS, device="cpu",
        actors=2, report=tmp_path / "report.jsonl",
    )  # fmt: skip
    assert files(tmp_path / "ray") == files(tmp_path / "cli")  # bitwise the same files
    assert len(files(tmp_path / "ray")) == 3
    by_input = {Path(row["input"]).name: row for row in rows}
    assert sorted(by_input) == ["alpha.png", "broken.jpg", "deep.png", "empty.png", "rotated.jpg"]
    assert {by_input[n]["status"] for n in ("broken.jpg", "empty.png")} == {"failed"}
    assert all(by_input[n]["error"] for n in ("broken.jpg", "empty.png"))
    assert all(by_input[n]["status"] == "written" for n in ("alpha.png", "deep.png", "rotated.jpg"))
    report = [line for line in (tmp_path / "report.jsonl").read_text().splitlines() if line]
    assert len(report) == 5 and all(set(json.loads(line)) == set(RESULT_FIELDS) for line in report)
    argv = ["correct", str(inputs), "-o", str(tmp_path / "cli_ray"), "-r", "-q", "--ray"]
    assert cli.main([*argv, "--weights", WEIGHTS, "--device", "cpu", "--actors", "2"]) == 1
    assert files(tmp_path / "cli_ray") == files(tmp_path / "cli")


class DiesOnce(CorrectFiles):
    """Writes its first photo, then the actor process dies (once per job, via a marker)."""

    def correct(self, source: Path, target: Path, planned: str) -> str:
        before = target.stat().st_mtime_ns if target.exists() else None
        plan = super().correct(source, target, planned)
        if target.stat().st_mtime_ns != before:
            with open(target.parent.parent / "writes.log", "a") as log:
                log.write(f"{target.name}\n")
        marker = target.parent.parent / "died"
        if not marker.exists():
            marker.touch()
            os._exit(1)
        return plan


def test_a_worker_that_dies_mid_job_is_retried_and_each_output_written_once(tmp_path):
    inputs = tmp_path / "work" / "in"
    inputs.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(data.chelsea()[::6, ::6] // (i + 1)).save(inputs / f"cat{i}.png")
    out = tmp_path / "work" / "out"
    rows = correct_files(
        [str(inputs)], out, weights=WEIGHTS, device="cpu", actors=1, worker=DiesOnce
    )
    assert (tmp_path / "work" / "died").exists()  # the actor did die
    assert [row["status"] for row in rows] == ["written"] * 4
    writes = (tmp_path / "work" / "writes.log").read_text().split()
    assert sorted(writes) == [f"cat{i}.png" for i in range(4)]  # each exactly once
    assert sorted(p.name for p in out.iterdir()) == [f"cat{i}.png" for i in range(4)]  # no temp


def test_a_second_run_with_skip_existing_corrects_nothing(tmp_path):
    inputs = photo_folder(tmp_path)
    out = tmp_path / "out"
    correct_files([str(inputs)], out, recursive=True, weights=WEIGHTS, device="cpu")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    rows = correct_files(
        [str(inputs)], out, recursive=True, weights=WEIGHTS, device="cpu", skip_existing=True
    )
    statuses = {Path(row["input"]).name: row["status"] for row in rows}
    assert statuses == {"alpha.png": "skipped", "deep.png": "skipped", "rotated.jpg": "skipped",
                        "broken.jpg": "failed", "empty.png": "failed"}  # fmt: skip
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_outputs_we_did_not_write_are_never_replaced(tmp_path):
    inputs = photo_folder(tmp_path)
    out = tmp_path / "out"
    correct_files([str(inputs)], out, recursive=True, weights=WEIGHTS, device="cpu")
    (out / "trip" / "alpha.png").write_bytes(b"someone else's file")
    rows = correct_files([str(inputs)], out, recursive=True, weights=WEIGHTS, device="cpu")
    statuses = {Path(row["input"]).name: row for row in rows}
    assert statuses["alpha.png"]["status"] == "failed"
    assert "did not write" in statuses["alpha.png"]["error"]
    assert (out / "trip" / "alpha.png").read_bytes() == b"someone else's file"
    assert statuses["rotated.jpg"]["status"] == "written"  # our own earlier result: replaced


def test_the_image_stage_gives_what_the_corrector_gives():
    images = [data.astronaut()[::8, ::8], data.coffee()[::8, ::8], data.camera()[::8, ::8]]
    dataset = ray.data.from_items([{"image": image, "n": i} for i, image in enumerate(images)])
    out = dataset.map_batches(
        CorrectImages,
        fn_constructor_kwargs={"weights": WEIGHTS, "device": "cpu"},
        compute=ray.data.ActorPoolStrategy(size=1),
        batch_size=2,
        num_cpus=0.75,
    ).take_all()
    corrector = ExposureCorrector(WEIGHTS, device="cpu")
    for row in sorted(out, key=lambda row: row["n"]):
        expected = corrector(images[row["n"]])
        assert row["image"].dtype == expected.dtype and np.array_equal(row["image"], expected)


def test_the_example_runs_on_its_own_sample_folder():
    example = Path(__file__).parents[1] / "examples" / "ray_cluster.py"
    done = subprocess.run(  # its own local cluster (Ray's socket paths need a short TMPDIR)
        [sys.executable, str(example), "--actors", "1"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = Path(done.stdout.strip().splitlines()[-1].removeprefix("wrote "))
    try:
        statuses = sorted(json.loads(line)["status"] for line in report.read_text().splitlines())
        assert statuses == ["failed", "written", "written"]
    finally:
        shutil.rmtree(report.parent)
