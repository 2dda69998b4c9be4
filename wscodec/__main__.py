"""``python -m wscodec`` and the ``wscodec`` command (see :mod:`wscodec.cli`)."""

from __future__ import annotations

import sys

from .cli import info, main

__all__ = ["info", "main"]

if __name__ == "__main__":
    sys.exit(main())
