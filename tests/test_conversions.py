"""One image through the package, traced call by call: each conversion happens once.

``sys.setprofile`` records every call into ``exposure_slot`` while one image is corrected.
Whatever the input type (PIL, numpy uint8, numpy float, torch) and mode, the options are
checked once, the pixels converted once in (``pixels``) and once out, and nothing inside
the pipeline checks the image again.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from exposure_slot import pixel_values

CONVERTED_IN = ("numpy_to_float", "_tensor")
"""The functions that turn user pixels into the network's float batch."""
CONVERTED_OUT = ("to_uint", "_to_float", "_tensor.<locals>.back")
"""The functions that turn the corrected float batch into the user's pixels."""
CHECKS = ("_check_float_values", "_as_batch", "_check_uint8_rgb", "check_strength")


def trace(call: Callable[[], Any]) -> tuple[Any, Counter[str]]:
    """``call()``'s result and how often each function of exposure_slot ran (qualified
    names, e.g. ``Options.__post_init__``), in this thread."""
    calls: Counter[str] = Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and "exposure_slot" in frame.f_code.co_filename:
            calls[frame.f_code.co_qualname] += 1

    sys.setprofile(profile)
    try:
        result = call()
    finally:
        sys.setprofile(None)
    return result, calls


def inputs(photo: np.ndarray) -> dict[str, Any]:
    return {
        "pil": Image.fromarray(photo),
        "uint8": photo,
        "float32": photo.astype(np.float32) / 255,
        "torch": torch.from_numpy(photo).permute(2, 0, 1).float() / 255,
    }


@pytest.mark.parametrize("kind", ["pil", "uint8", "float32", "torch"])
@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_each_conversion_happens_once(corrector, astronaut, kind, mode) -> None:
    image = inputs(astronaut[:150, :200])[kind]  # larger than the proxy in fast mode
    options = {"mode": mode, **({"proxy_size": 64} if mode == "fast" else {})}
    out, calls = trace(lambda: corrector(image, **options))
    assert type(out) is type(image)
    assert calls["Options.__post_init__"] == calls["check_strength"] == 1
    assert calls["_as_batch"] == calls["_check_uint8_rgb"] == 0  # trusted inside
    assert calls["_check_float_values"] == (kind in ("float32", "torch"))
    assert calls["network_pass"] == 1 and calls["forward_tiles"] == 1
    in_place_8bit = mode == "fast" and kind in ("pil", "uint8")
    if in_place_8bit:  # read and written a strip at a time: no whole-image conversion
        assert calls["Uint8Photo.strips"] == 1
        assert sum(calls[name] for name in CONVERTED_IN + CONVERTED_OUT) == 0
    else:
        assert sum(calls[name] for name in CONVERTED_IN) == 1, calls
        assert sum(calls[name] for name in CONVERTED_OUT) == 1, calls


def test_a_list_checks_its_options_once(corrector, astronaut) -> None:
    crops = [astronaut[:40, :48], astronaut[40:80, :48], astronaut[80:120, :48]]
    _, calls = trace(lambda: corrector(crops, strength=0.5))
    assert calls["Options.__post_init__"] == calls["check_strength"] == 1
    assert calls["numpy_to_float"] == calls["to_uint"] == calls["network_pass"] == 3


def test_a_float32_tensor_in_range_is_not_copied_in(corrector, astronaut) -> None:
    """The network reads a float32 tensor in [0, 1] where it is; the caller's tensor is
    never written to."""
    tensor = inputs(astronaut[:64, :64])["torch"]
    before = tensor.clone()
    seen = []
    original = torch.Tensor.to

    def spy(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append(self.data_ptr())
        return original(self, *args, **kwargs)

    torch.Tensor.to = spy  # type: ignore[method-assign]
    try:
        out = corrector(tensor)
    finally:
        torch.Tensor.to = original  # type: ignore[method-assign]
    assert tensor.data_ptr() in seen  # the pass was handed the caller's pixels
    assert torch.equal(tensor, before) and out.is_contiguous() and out.shape == tensor.shape


def test_the_one_pil_mode_table_covers_pillow() -> None:
    """Every Pillow mode is in the table; its gray modes are Pillow's modes based on L."""
    assert set(pixel_values.PIL_MODES) == set(Image.MODES)
    assert set(pixel_values.PIL_MODES.values()) <= {"L", "LA", "RGB", "RGBA", "I", "F", "I;16"}
    assert {m for m in Image.MODES if Image.getmodebase(m) == "L"} == pixel_values.GRAY_MODES
    assert {"I", "F", "I;16", "I;16B", "I;16L", "I;16N"} == pixel_values.WIDE_GRAY_MODES
