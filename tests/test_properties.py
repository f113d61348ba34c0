"""Property-based tests of ``ExposureCorrector.__call__`` over sizes, dtypes and value ranges.

Any crop of a real photo from 1×1 to 300×300, stored as uint8, uint16, float32, float64 or
a torch float tensor and mapped into any value range, gives either an output of the input's
type, shape and dtype with values in range, or one of the documented errors: floats with NaN
or further than FLOAT_TOLERANCE outside [0, 1] raise InvalidImageError. Examples are drawn
deterministically (``derandomize``), so CI runs the same cases every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage import data

from exposure_slot import ExposureSlotError, InvalidImageError, OptionError, files, pixel_values
from exposure_slot.errors import ImageTypeError
from exposure_slot.pixel_values import FLOAT_TOLERANCE

PHOTO = data.astronaut()  # 512×512×3 uint8
STORAGE = ["uint8", "uint16", "float32", "float64", "torch.float32", "torch.float16"]
LAYOUTS = {"numpy": ["H×W×3", "H×W", "H×W×1", "H×W×4"], "torch": ["3×H×W", "1×3×H×W"]}
INT_MAX = {"uint8": 255, "uint16": 65535}


# Few, deterministic examples: each runs the network on up to 300×300 pixels on the CPU.
PROPERTY_SETTINGS = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)


@dataclass
class Case:
    image: Any
    storage: str
    layout: str
    valid: bool  # inside the documented input domain


@st.composite
def cases(draw: st.DrawFn, storage: str, float_range: tuple[float, float]) -> Case:
    """A crop of a real photo at any size and offset, stored and scaled as drawn."""
    h, w = draw(st.integers(1, 300)), draw(st.integers(1, 300))
    y, x = draw(st.integers(0, 512 - h)), draw(st.integers(0, 512 - w))
    crop = PHOTO[y : y + h, x : x + w].astype(np.float64) / 255.0
    layout = draw(st.sampled_from(LAYOUTS["torch" if storage.startswith("torch") else "numpy"]))
    if layout in ("H×W", "H×W×1"):
        crop = crop[:, :, 1:2]
    elif layout == "H×W×4":
        crop = np.dstack([crop, crop[::-1, ::-1, :1]])
    if storage in INT_MAX:
        lo, hi = sorted(draw(st.integers(0, INT_MAX[storage])) for _ in range(2))
        values = np.round(lo + crop * (hi - lo)).astype(storage)
    else:
        lo, hi = sorted(draw(st.floats(*float_range)) for _ in range(2))
        values = lo + crop * (hi - lo)
        if draw(st.booleans()) and draw(st.booleans()):  # a quarter of the cases
            values[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1)), 0] = np.nan
    if layout == "H×W":
        values = values[:, :, 0]
    if storage.startswith("torch"):
        tensor = torch.from_numpy(values).permute(2, 0, 1).to(getattr(torch, storage[6:]))
        image = tensor[None] if layout == "1×3×H×W" else tensor
        stored = image.double().numpy()
    else:
        image = values.astype(storage) if storage.startswith("float") else values
        stored = image.astype(np.float64)
    # The documented domain, judged on the values as stored (after rounding to the dtype).
    valid = storage in INT_MAX or bool(
        np.isfinite(stored).all()
        and stored.min() >= -FLOAT_TOLERANCE
        and stored.max() <= 1 + FLOAT_TOLERANCE
    )
    return Case(image, storage, layout, valid)


def check_output(case: Case, out: Any) -> None:
    image = case.image
    assert type(out) is type(image)
    assert out.shape == image.shape and out.dtype == image.dtype
    if case.layout == "H×W×4":  # alpha passes through (float alpha clipped like colour)
        alpha = image[:, :, 3] if case.storage in INT_MAX else np.clip(image[:, :, 3], 0, 1)
        assert np.array_equal(out[:, :, 3], alpha)
    if case.storage in INT_MAX:
        return  # every value of the integer dtype is in range
    values = out.float() if isinstance(out, torch.Tensor) else out
    assert bool((values >= 0).all()) and bool((values <= 1).all()), (values.min(), values.max())


RANGES = {"near [0, 1]": (-0.2, 1.2), "any": (-300.0, 300.0)}
PARAMETERS = [(storage, "near [0, 1]") for storage in STORAGE]
PARAMETERS += [(storage, "any") for storage in STORAGE if storage not in INT_MAX]


@pytest.mark.parametrize(("storage", "value_range"), PARAMETERS)
@PROPERTY_SETTINGS
@given(draws=st.data())
def test_right_output_or_a_documented_error(
    corrector, storage: str, value_range: str, draws: st.DataObject
) -> None:
    """A right output inside the documented domain (finite floats within the clipping
    tolerance, any integers); InvalidImageError exactly outside it; never another exception."""
    case = draws.draw(cases(storage, float_range=RANGES[value_range]))
    try:
        out = corrector(case.image)
    except ExposureSlotError as error:
        assert isinstance(error, InvalidImageError), error
        assert not case.valid, error
        assert "NaN" in str(error) or "[0, 1]" in str(error)
        return
    assert case.valid
    check_output(case, out)


@given(
    values=st.lists(st.floats(-0.5, 1.5, width=32), min_size=1, max_size=64),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    bits=st.sampled_from([8, 16]),
)
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
def test_the_quantiser_rounds_to_nearest_and_round_trips(values, dtype, bits) -> None:
    """to_uint is clip, scale, round to nearest (ties to even) in every float dtype and
    shape, and from_uint then to_uint gives the same integers back: an 8- or 16-bit file
    or array that passes unchanged stays bit-identical."""
    x = np.asarray(values, dtype=dtype)
    full = 2**bits - 1
    want = np.rint(np.clip(x.astype(np.float32), 0, 1) * np.float32(full))
    for shape in (x.shape, (len(values), 1, 1)):
        got = pixel_values.to_uint(x.reshape(shape), bits)
        assert got.dtype == (np.uint8 if bits == 8 else np.uint16)
        assert np.array_equal(got.ravel(), want)
        assert np.array_equal(pixel_values.to_uint(pixel_values.from_uint(got), bits), got)


def test_files_and_in_memory_images_share_one_quantiser() -> None:
    assert files.to_uint is pixel_values.to_uint and files.from_uint is pixel_values.from_uint
    assert pixel_values.to_uint(np.float32(0.5), np.int64(8)) == 128
    with pytest.raises(InvalidImageError, match="NaN or infinity"):
        pixel_values.to_uint(np.array([0.2, np.nan]), 8)
    with pytest.raises(OptionError, match="bit_depth must be 8 or 16"):
        pixel_values.to_uint(np.zeros(3), 12)
    with pytest.raises(ImageTypeError, match="uint8 or uint16"):
        pixel_values.from_uint(np.zeros(3, dtype=np.int32))
