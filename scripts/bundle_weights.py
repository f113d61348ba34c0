"""Bundle trained weights into the package as the default and record them in the manifest.

Run as ``python scripts/bundle_weights.py runs/v1/latest --name NAME [--metrics RESULTS.json ...]``.
Writes ``exposure_slot/bundled/<name>/`` (fp16 ``model.safetensors``, ``config.json`` and the
model card ``README.md``), then sets the manifest entry ``<name>`` (files with sha256 and size,
licence, training data, metrics) and makes it the default; other entries are left as they are,
so a name keeps meaning the same weights. ``--metrics`` takes the JSON files that
``exposure-slot eval --json`` writes; their mean PSNR/SSIM per method and group go into the
manifest and the card. What each release says of itself is :data:`RELEASES`; its training
data section is built from ``docs/training_photos.csv`` (and ``docs/hdr_scenes.csv``).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from exposure_slot.weights import WEIGHTS_NAME, sha256_file
from exposure_slot.weights.card import CardInfo, DataSource, card_info, write_card
from exposure_slot.weights.convert import CONFIG_NAME, load_folder, save_folder

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "exposure_slot" / "weights_manifest.json"
PHOTOS_CSV = ROOT / "docs" / "training_photos.csv"
HDR_CSV = ROOT / "docs" / "hdr_scenes.csv"
# The sources of the 17 HDR training scenes of open-level2-v2 and -v3; v4 added the npm ones.
FIRST_HDR_SOURCES = (
    "debian:blender-data",
    "debian:psychtoolbox-3-common",
    "github:AcademySoftwareFoundation/openexr-images",
)
LICENCE = "Apache-2.0"
PHOTOS_AND_SCENES = (
    "licence-clean photographs with synthetic exposure errors (per-file record in "
    "docs/training_photos.csv) and camera frames of the 'train' scenes of docs/hdr_scenes.csv "
    "(BSD-3-Clause, CC0-1.0)"
)
PHOTOS_LIMITATION = (
    "Several training photos are under share-alike licences (CC-BY-SA, GPL); whether trained "
    "weights are a derived work of their training data is unsettled. The per-file record is "
    "docs/training_photos.csv in the exposure-slot repository."
)


@dataclass(frozen=True)
class Release:
    """What a bundled release says of itself in the manifest and its model card."""

    description: str
    limitations: tuple[str, ...]
    training_data: str
    hdr_sources: tuple[str, ...] = ()
    """Also trained on the 'train' scenes of docs/hdr_scenes.csv from these sources."""


RELEASES = {
    "open-level2": Release(
        description=(
            "The first default weights of exposure-slot: the 2-level network (3 main slots, 7 "
            "sub-slots) trained from scratch on licence-clean photographs (CC0, public domain, "
            "CC-BY, CC-BY-SA, BSD, GPL/LGPL, GFDL; no research-only data) with synthetic, "
            "camera-like exposure errors (under, over and mixed within one frame)."
        ),
        limitations=(
            "Trained on 88 photographs with synthetic exposure errors, for about 10.5 CPU-core "
            "hours (seven runs, 10,100 steps in all; the last continued the mean of the two "
            "before it with that mean held as an anchor); it has not seen the paper's data sets "
            "(SICE, MSEC, LCDP: research-only licences) and has not been scored on them.",
            "Trained on samples of 128 to 512 pixels and, in its last 1,900 steps, to answer "
            "full-resolution crops as it answers their 3-6x smaller versions: above a few "
            "megapixels its answer still depends somewhat on the resolution it runs at (on four "
            "12 MP photos, fast mode with a 1024-pixel proxy is 35.2-44.2 dB PSNR from a "
            "whole-photo pass), which is why the corrector's auto mode runs it on a 1024-pixel "
            "proxy for large photos.",
            "On real camera exposures of held-out HDR scenes it brightens under-exposed photos "
            "too little (no better than a global auto-gamma curve) and gives clipped whites a "
            "beige or pink cast (see docs/evaluation.md).",
            PHOTOS_LIMITATION,
        ),
        training_data="licence-clean photographs with synthetic exposure errors; "
        "per-file record in docs/training_photos.csv",
    ),
    "open-level2-v2": Release(
        description=(
            "The second default weights of exposure-slot: open-level2 continued on camera "
            "frames of real HDR scenes (linear scene radiance from the OpenEXR sample images, "
            "Blender's CC0 panoramas and psychtoolbox's Ocean, rendered through camera curves "
            "at several exposures, with the exposure fusion of the bracket as the target) "
            "besides the same "
            "licence-clean photographs with synthetic exposure errors and well-exposed inputs "
            "to leave alone, then averaged with open-level2 (one third) so that over-exposed "
            "photos keep its correction."
        ),
        limitations=(
            "Two thirds of it are open-level2 (10,100 steps on 88 photographs) continued for "
            "1,250 steps on one CPU core (500 with half of the samples from 17 real HDR scenes "
            "and photo targets brightened to a mean luma of at least 0.37, then 750 more with a "
            "quarter of the samples well-exposed inputs to be left unchanged; the snapshots "
            "at 250, 500 and 750 averaged); one third is open-level2 itself. It has not seen "
            "the paper's data sets (SICE, MSEC, LCDP: research-only licences) and has not been "
            "scored on them.",
            "On camera frames of 7 held-out real HDR scenes, scored against the fusion of each "
            "bracket, it is better than open-level2 and than a global auto-gamma curve on "
            "under-exposed frames, as good as open-level2 on over-exposed ones, and leaves "
            "well-exposed photos nearly unchanged; scored against the 0 EV frame, over-exposed "
            "frames come out brighter and 2.2 dB lower than with open-level2. Under-exposed "
            "frames are still below the project's goal (3 dB above auto-gamma). One further "
            "real scene (libjxl's hdr_room) and the synthetic validation set, whose targets are "
            "the photos as shot (many of them dark), score lower than with open-level2, as it "
            "brightens more (see docs/evaluation.md).",
            "Trained on 17 HDR scenes: scenes unlike them (night, snow, strongly coloured light) "
            "may come out too bright or too flat.",
            PHOTOS_LIMITATION,
        ),
        training_data=PHOTOS_AND_SCENES,
        hdr_sources=FIRST_HDR_SOURCES,
    ),
    "open-level2-v3": Release(
        description=(
            "The third default weights of exposure-slot: open-level2-v2's real-scene training "
            "continued with photo targets re-exposed into the brightness range of well-exposed "
            "references (mean luma 0.37-0.55) and a loss on each sample's mean brightness, so "
            "that under- and over-exposed camera frames of real scenes come out as bright as "
            "the exposure fusion of their bracket, clipped whites stay neutral and well-exposed "
            "photos are left nearly alone."
        ),
        limitations=(
            "open-level2 (10,100 steps on 88 photographs) continued on one CPU core for 3,250 "
            "steps in four runs, half of the samples from 17 real HDR scenes: 500 steps, then "
            "750 with a quarter of the samples well-exposed inputs to be left unchanged, then "
            "1,200 and 800 with photo targets re-exposed into mean luma 0.37-0.55, a loss on "
            "mean brightness and a fifth of such inputs; the last snapshots of the last three "
            "runs averaged. "
            "It has not seen the paper's data sets (SICE, MSEC, LCDP: research-only licences) "
            "and has not been scored on them.",
            "On camera frames of 7 held-out real HDR scenes, scored against the fusion of each "
            "bracket, it is better than open-level2-v2 on under- and over-exposed frames and "
            "leaves well-exposed photos nearly unchanged; under-exposed "
            "frames are still below the project's goal (3 dB above a global auto-gamma curve). "
            "These scenes chose the recipe, so they are not an untouched test set. The "
            "synthetic validation set, whose targets are the photos as shot (many of them "
            "dark), scores lower than with the earlier weights, as it brightens more (see "
            "docs/evaluation.md).",
            "Trained on 17 HDR scenes: scenes unlike them (night, snow, strongly coloured light) "
            "may come out too bright or too flat.",
            PHOTOS_LIMITATION,
        ),
        training_data=PHOTOS_AND_SCENES,
        hdr_sources=FIRST_HDR_SOURCES,
    ),
    "open-level2-v4": Release(
        description=(
            "The fourth default weights of exposure-slot: open-level2-v3's real-scene training "
            "continued with 11 more real HDR scenes (Poly Haven panoramas, CC0), so that "
            "under- and over-exposed camera frames of real scenes come out as bright as the "
            "exposure fusion of their bracket, clipped whites stay neutral and well-exposed "
            "photos are left nearly alone."
        ),
        limitations=(
            "open-level2 (10,100 steps on 88 photographs) continued on one CPU core for 4,650 "
            "steps, half of the samples from real HDR scenes: open-level2-v3's 3,250 steps on 17 "
            "scenes (photo targets re-exposed into mean luma 0.37-0.55, a loss on mean "
            "brightness, a fifth of the samples well-exposed inputs to leave alone), then 800 "
            "steps with the same recipe on 28 scenes, then two runs of 600 steps from the mean "
            "of that run and open-level2-v3; the last snapshots of each run averaged and the "
            "two averages averaged. "
            "It has not seen the paper's data sets (SICE, MSEC, LCDP: research-only licences) "
            "and has not been scored on them.",
            "On camera frames of 7 held-out real HDR scenes, scored against the fusion of each "
            "bracket, it is 3 dB above a global auto-gamma curve on under-exposed frames and "
            "more on over-exposed ones, and leaves well-exposed photos nearly unchanged; these "
            "scenes chose the recipe, so they are not an untouched test set. On 3 further "
            "scenes that no choice looked at, its margin on under-exposed frames is about half "
            "as large (interiors come out darker than their references). The synthetic "
            "validation set, whose targets are the photos as shot (many of them dark), scores "
            "lower than with open-level2, as it brightens more (see docs/evaluation.md).",
            "Trained on 28 HDR scenes: scenes unlike them (night, snow, strongly coloured light) "
            "may come out too bright or too flat.",
            PHOTOS_LIMITATION,
        ),
        training_data=PHOTOS_AND_SCENES,
        hdr_sources=(*FIRST_HDR_SOURCES, "npm:@pmndrs/assets"),
    ),
    "open-level2-v5": Release(
        description=(
            "The default weights of exposure-slot: open-level2-v4 continued with more of its "
            "samples (70% instead of 50%) drawn from real HDR scenes with exposure-fusion "
            "targets, so that under- and over-exposed camera frames of real scenes come out "
            "as bright as the exposure fusion of their bracket, clipped whites stay neutral "
            "and well-exposed photos are left nearly alone."
        ),
        limitations=(
            "open-level2 (10,100 steps on 88 photographs) continued on one CPU core for 5,250 "
            "steps on photographs and real HDR scenes: open-level2-v4's 4,650 (half of the "
            "samples from the scenes), then two runs of 600 steps with 70% of the samples from "
            "the 28 training scenes; the last snapshots of each run averaged and the two "
            "averages averaged. "
            "It has not seen the paper's data sets (SICE, MSEC, LCDP: research-only licences) "
            "and has not been scored on them.",
            "On camera frames of 7 held-out real HDR scenes, scored against the fusion of each "
            "bracket, it is more than 3 dB above a global auto-gamma curve on under-exposed "
            "frames and more on over-exposed ones, and leaves well-exposed photos nearly "
            "unchanged; these scenes chose the recipe, so they are not an untouched test set. "
            "On 3 further scenes that no choice looked at it is also 3 dB above the curve on "
            "under-exposed frames, just (interiors still come out a little darker than their "
            "references). It learnt the fusion's look: against a single well-exposed frame "
            "it scores lower than open-level2-v4. The synthetic validation set, whose targets "
            "are the photos as shot (many of them dark), scores lower than with open-level2, as "
            "it brightens more (see docs/evaluation.md).",
            "Trained on 28 HDR scenes: scenes unlike them (night, snow, strongly coloured light) "
            "may come out too bright or too flat.",
            PHOTOS_LIMITATION,
        ),
        training_data=PHOTOS_AND_SCENES,
        hdr_sources=(*FIRST_HDR_SOURCES, "npm:@pmndrs/assets"),
    ),
}
"""Each bundled release by name: names are pins, so a release's weights never change."""
NAME = "open-level2-v5"


def training_sources(release: Release, split: str = "train") -> list[DataSource]:
    """One DataSource per source of the photos (and HDR scenes) in ``split``, with their
    licences."""
    sources: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    records = [(PHOTOS_CSV, "source_package", "photos", None)]
    records += [(HDR_CSV, "source", "HDR scenes", release.hdr_sources)]
    for path, column, kind, only in records:
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["split"] == split and (only is None or row[column] in only):
                    sources[row[column], kind][row["licence"].split(" (")[0]] += 1
    return [
        DataSource(
            name=source,
            licence=", ".join(sorted(licences)),
            note=f"{sum(licences.values())} {kind}",
        )
        for (source, kind), licences in sorted(sources.items())
    ]


def metric_rows(results_files: Sequence[Path]) -> list[dict[str, object]]:
    """Mean PSNR/SSIM per method and group from ``exposure-slot eval --json`` files."""
    rows = []
    for results_json in results_files:
        rows += _metric_rows(results_json)
    return rows


def _metric_rows(results_json: Path) -> list[dict[str, object]]:
    data = json.loads(results_json.read_text())
    rows = []
    for method, groups in data["summary"].items():
        for group, score in groups.items():
            rows.append(
                {
                    "benchmark": data.get("benchmark", results_json.stem),
                    "method": method,
                    "group": group,
                    "PSNR": round(score["psnr"], 2),
                    "SSIM": round(score["ssim"], 4),
                    "images": score["count"],
                }
            )
    return rows


def bundle(
    run_folder: Path,
    results_files: Sequence[Path] = (),
    name: str = NAME,
    trained_steps: int | None = None,
) -> Path:
    """Write the bundled folder for ``name`` and update the manifest; returns the folder.
    ``trained_steps`` (the steps of every run that led to these weights) replaces the count
    of the last run that the run folder records."""
    release = RELEASES[name]
    net = load_folder(run_folder)
    steps = trained_steps or json.loads((run_folder / CONFIG_NAME).read_text()).get("trained_steps")
    target = ROOT / "exposure_slot" / "bundled" / name
    save_folder(net, target, dtype=torch.float16, extra_config={"trained_steps": steps})
    metrics = metric_rows(results_files)
    info: CardInfo = card_info(
        target,
        name=name,
        licence=LICENCE,
        description=release.description,
        source=f"bundled with the exposure-slot package (weights='{name}')",
        training_data=training_sources(release),
        metrics=metrics,
        metrics_note="Measured with `exposure-slot eval` on held-out photos "
        "(see docs/evaluation.md).",
        limitations=release.limitations,
    )
    write_card(target, info)
    manifest = json.loads(MANIFEST.read_text())
    manifest["default"] = name
    entry = {
        "level": net.config.level,
        "licence": LICENCE,
        "description": release.description,
        "bundled": f"bundled/{name}",
        "files": {
            f: {"sha256": sha256_file(target / f), "size": (target / f).stat().st_size}
            for f in (WEIGHTS_NAME, CONFIG_NAME)
        },
        "training_data": release.training_data,
        "metrics": {"trained_steps": steps, "results": metrics},
    }
    others = {k: v for k, v in manifest["weights"].items() if k != name}
    manifest["weights"] = {name: entry, **others}
    MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_folder", type=Path, help="a weights folder, e.g. runs/v1/latest")
    parser.add_argument(
        "--metrics",
        type=Path,
        nargs="+",
        default=[],
        help="JSON files of exposure-slot eval --json",
    )
    parser.add_argument("--name", default=NAME, choices=sorted(RELEASES))
    parser.add_argument(
        "--trained-steps",
        type=int,
        help="steps of all runs in the chain (default: the last run's, from its config.json)",
    )
    args = parser.parse_args()
    folder = bundle(args.run_folder, args.metrics, args.name, args.trained_steps)
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"bundled {folder} ({size / 1e6:.1f} MB); manifest default = {args.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
