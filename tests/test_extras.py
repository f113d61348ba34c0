"""Optional features without their extra: a MissingExtraError naming what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCKED = "import sys; sys.modules[{name!r}] = None\n"
BROKEN = (
    "import sys, types\n"
    "class Broken(types.ModuleType):\n"
    "    def __getattr__(self, attr): raise AttributeError(attr)\n"
    "import importlib.abc, importlib.machinery\n"
    "class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name == {name!r}: return importlib.machinery.ModuleSpec(name, self)\n"
    "    def create_module(self, spec): return None\n"
    "    def exec_module(self, module):\n"
    "        raise RuntimeError('operator torchvision::nms does not exist')\n"
    "sys.meta_path.insert(0, Finder())\n"
)


@pytest.mark.parametrize(("module", "dependency", "extra"), [
    ("exposure_slot.spandrel", "spandrel", "spandrel"),
    ("exposure_slot.export", "onnx", "onnx"),
])  # fmt: skip
@pytest.mark.parametrize("how", [BLOCKED, BROKEN])
def test_a_missing_or_broken_dependency_names_the_extra(module, dependency, extra, how):
    use = (
        f"import {module} as m\nm.export_onnx('default', 'x.onnx')"
        if module.endswith("export")
        else f"import {module}"
    )
    code = how.format(name=dependency) + use
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("exposure_slot.errors.MissingExtraError") and f"[{extra}]" in last
