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
        print(f"compiled module: not loaded ({_backend.EXTENSION_ERROR})")
    else:
        print(f"compiled module: {compiled.__file__}")
        thresholds = getattr(compiled, "NOGIL_THRESHOLDS", {"mask": compiled.NOGIL_THRESHOLD})
        print(
            "GIL released from: "
            + ", ".join(f"{name} {size} bytes" for name, size in thresholds.items())
        )
        kernels = getattr(compiled, "KERNELS", None)
        if kernels is not None:
            print("SIMD kernels: " + ", ".join(f"{name} {path}" for name, path in kernels.items()))
            print("SIMD levels available: " + ", ".join(compiled.SIMD_LEVELS))
            features = compiled.cpu_features()
            used = [name for name, present in features.items() if present]
            print("CPU features the kernels can use: " + (", ".join(used) or "none"))
        if _backend.EXTENSION_ERROR:
            print(f"compiled module not in use: {_backend.EXTENSION_ERROR}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="wscodec", description="A fast WebSocket codec.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("info", help="version, backend and build details")
    parser.parse_args(argv)
    return info()


if __name__ == "__main__":
    sys.exit(main())
