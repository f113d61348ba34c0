"""``python -m exposure_slot``: the same command line as ``exposure-slot``."""

from .cli import main

raise SystemExit(main())
