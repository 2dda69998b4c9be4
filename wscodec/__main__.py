"""``python -m wscodec`` and the ``wscodec`` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import __version__, _backend


def info() -> int:
    """Print the version, the active backend and why the compiled one is not in use."""
    print(f"wscodec {__version__}")
    print(f"python {sys.version.split()[0]} ({sys.implementation.name})")
    print(f"backend: {_backend.BACKEND}")
    compiled = _backend.compiled_codec
    if compiled is None:
        print(f"compiled module: missing: {_backend.compiled_error}")
    else:
        print(f"compiled module: {compiled.__file__}")
        print(f"GIL released from {compiled.NOGIL_THRESHOLD} bytes")
    if _backend.EXTENSION_ERROR and _backend.EXTENSION_ERROR != _backend.compiled_error:
        print(f"compiled module not in use: {_backend.EXTENSION_ERROR}")
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if gil_enabled is not None:  # Python 3.13+: False on a free-threaded build
        print(f"GIL enabled: {gil_enabled()}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="wscodec", description="A fast WebSocket codec.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("info", help="version, backend and build details")
    parser.parse_args(argv)
    return info()


if __name__ == "__main__":
    sys.exit(main())
