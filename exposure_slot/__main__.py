"""``python -m exposure_slot``: the same command line as ``exposure-slot``."""

from .launch import main

raise SystemExit(main())
