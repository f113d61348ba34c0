"""Optional dependencies: imported when a feature needs them, named by the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise MissingExtraError naming the extra that installs it (also
    when an installed copy fails to import, as spandrel does with a torchvision that does
    not fit the installed torch)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f'{module} is not installed: pip install "exposure-slot[{extra}]" ({exc})'
        ) from None
    except Exception as exc:
        raise MissingExtraError(
            f"{module} is installed but cannot be imported ({type(exc).__name__}: {exc}); "
            f'reinstall it with pip install "exposure-slot[{extra}]"'
        ) from exc
