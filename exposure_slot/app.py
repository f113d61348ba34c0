"""A local web app: drop photos, compare before and after, set the strength, download.

``exposure-slot app`` serves it on 127.0.0.1 (needs the ``app`` extra: ``pip install
"exposure-slot[app]"``). Photos are read and written by exposure-slot itself, so a download
keeps what the command line keeps (orientation applied, ICC profile, EXIF, 16 bits, alpha);
large photos go through the same automatic mode as the command line. A file that cannot be
read is named in the page with the library's own error. Nothing leaves this machine: the
server listens on loopback and Gradio's usage analytics are off.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .corrector import ExposureCorrector
from .errors import ExposureSlotError
from .extras import require
from .files import WRITABLE_EXTENSIONS, read_image, write_image
from .options import MAX_STRENGTH
from .visualize import fit_long_side, slot_sheet, to_pil

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
PREVIEW_SIDE = 1600
"""Long side of the before/after pictures shown in the page (downloads keep full size)."""
SLOTS_SIDE = 768
"""Long side of the photo the slot maps are computed on."""
SUFFIX = "_corrected"


@dataclass
class Result:
    """One corrected upload: its name, previews and the file to download."""

    name: str
    before: np.ndarray
    after: np.ndarray
    download: Path
    slots: Any  # PIL image of the slot maps with their legend


def correct_upload(
    corrector: ExposureCorrector, path: Path, out_dir: Path, strength: float
) -> Result:
    """Correct one uploaded file into ``out_dir``; library errors propagate."""
    data = read_image(path)
    fixed = corrector(data.rgb, strength=strength)
    extension = path.suffix.lower() if path.suffix.lower() in WRITABLE_EXTENSIONS else ".png"
    target = out_dir / f"{path.stem}{SUFFIX}{extension}"
    write_image(target, fixed, like=data)
    small = fit_long_side(data.rgb, SLOTS_SIDE)
    slots = slot_sheet(small, corrector.slot_maps(small).levels, height=240)
    return Result(
        path.name,
        np.asarray(to_pil(fit_long_side(data.rgb, PREVIEW_SIDE))),
        np.asarray(to_pil(fit_long_side(fixed, PREVIEW_SIDE))),
        target,
        slots,
    )


def build_app(corrector: ExposureCorrector, workdir: str | os.PathLike[str] | None = None) -> Any:
    """The Gradio app (``gradio.Blocks``) around ``corrector``; corrected files go below
    ``workdir`` (default: a new temporary folder)."""
    gr = require("gradio", "app")
    root = Path(workdir or tempfile.mkdtemp(prefix="exposure-slot-app-"))
    root.mkdir(parents=True, exist_ok=True)

    progress_bar = gr.Progress()  # a default argument is how Gradio hands a handler its bar

    def run(files: list[str] | None, strength: float, progress: Any = progress_bar) -> tuple:
        if not files:
            raise gr.Error("Add one or more photos first.")
        out_dir = Path(tempfile.mkdtemp(dir=root))
        results, errors = [], []
        for index, name in enumerate(files):
            path = Path(name)
            progress(index / len(files), desc=f"correcting {path.name}")
            try:
                results.append(correct_upload(corrector, path, out_dir, strength))
            except (ExposureSlotError, OSError) as exc:
                errors.append(f"{path.name}: {exc}")
        if not results:
            raise gr.Error("\n".join(errors))
        lines = [f"Corrected {len(results)} of {len(files)} photo(s) at strength {strength:g}."]
        lines += [f"- **not corrected** {error}" for error in errors]
        names = [r.name for r in results]
        return (
            results,
            gr.update(choices=names, value=names[0]),
            *view(results, names[0]),
            [str(r.download) for r in results],
            "\n".join(lines),
        )

    def view(results: list[Result], name: str) -> tuple:
        chosen = next((r for r in results if r.name == name), None)
        if chosen is None:
            return None, None
        return (chosen.before, chosen.after), chosen.slots

    with gr.Blocks(title="exposure-slot", analytics_enabled=False) as app:
        gr.Markdown(
            "# exposure-slot\nFix badly exposed photos. Drop photos, set the strength "
            "(0 = as shot, 1 = the network's correction), press **Correct**, download the "
            "results with their metadata."
        )
        state = gr.State([])
        with gr.Row():
            with gr.Column(scale=1):
                files = gr.File(label="Photos", file_count="multiple", elem_id="photos")
                strength = gr.Slider(
                    0, MAX_STRENGTH, value=1.0, step=0.05, label="Strength", elem_id="strength"
                )
                button = gr.Button("Correct", variant="primary", elem_id="correct")
                status = gr.Markdown(elem_id="status")
                downloads = gr.File(
                    label="Corrected files", file_count="multiple", elem_id="downloads"
                )
            with gr.Column(scale=2):
                which = gr.Dropdown(label="Show", choices=[], elem_id="which")
                slider = gr.ImageSlider(label="Before / after", elem_id="before-after")
                slots = gr.Image(label="Slot maps (legend: share and brightness per slot)")
        button.click(run, [files, strength], [state, which, slider, slots, downloads, status])
        which.change(view, [state, which], [slider, slots])
    return app


def serve(
    corrector: ExposureCorrector,
    *,
    port: int = 7860,
    open_browser: bool = False,
    workdir: str | os.PathLike[str] | None = None,
) -> None:
    """Serve the app on 127.0.0.1:``port`` until interrupted."""
    launch(build_app(corrector, workdir), port=port, open_browser=open_browser)


def launch(app: Any, *, port: int, open_browser: bool = False, block: bool = True) -> None:
    """Start ``app`` on 127.0.0.1:``port`` (no share link, no server-side rendering node)."""
    app.queue().launch(
        server_name="127.0.0.1",
        server_port=port,
        inbrowser=open_browser,
        share=False,
        ssr_mode=False,
        quiet=True,
        prevent_thread_lock=not block,
    )
