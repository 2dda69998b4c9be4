"""``python -m wscodec`` and the ``wscodec`` command."""

from __future__ import annotations

import argparse
import sys
from typing import Any, List, Optional

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
    if _backend.EXTENSION_ERROR and _backend.EXTENSION_ERROR != _backend.compiled_error:
        print(f"compiled module not in use: {_backend.EXTENSION_ERROR}")
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if gil_enabled is not None:  # Python 3.13+: False on a free-threaded build
        print(f"GIL enabled: {gil_enabled()}")
    return 0


def echo(host: str, port: int, max_size: int) -> int:
    """Serve an echo endpoint until interrupted."""
    from .server import serve

    def handler(connection: Any) -> None:
        for message in connection:
            connection.send(message)

    with serve(handler, host, port, max_size=max_size, ping_interval=None) as server:
        print(
            f"echo server on ws://{host}:{server.port}/ (backend: {_backend.BACKEND})", flush=True
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="wscodec", description="A fast WebSocket codec.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("info", help="version, backend and build details")
    echo_parser = commands.add_parser("echo", help="a bare echo server")
    echo_parser.add_argument("--host", default="127.0.0.1")
    echo_parser.add_argument("--port", type=int, default=8765)
    echo_parser.add_argument("--max-size", type=int, default=2**20)
    args = parser.parse_args(argv)
    if args.command == "echo":
        return echo(args.host, args.port, args.max_size)
    return info()


if __name__ == "__main__":
    sys.exit(main())
