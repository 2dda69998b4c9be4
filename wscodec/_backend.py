"""Pick the codec backend once, at import.

The compiled module ``wscodec._codec`` is used when it imports and
``WSCODEC_NO_EXTENSIONS`` is unset (or "0"); otherwise the pure-Python twin
``wscodec.codec``. ``BACKEND`` names the choice and ``EXTENSION_ERROR`` says
why the compiled module is not in use (``None`` when it is);
``compiled_error`` says why it could not be loaded at all.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import List, Optional

from . import codec as python_codec

__all__ = [
    "BACKEND",
    "EXTENSION_ERROR",
    "SIMD_CAPS",
    "TWINS",
    "check_simd_cap",
    "codec",
    "compiled_twin",
    "twins_in_use",
    "compiled_codec",
    "compiled_error",
    "missing_reason",
    "python_codec",
]

COMPILED_NAME = "wscodec._codec"
#: The values WSCODEC_SIMD takes (src/wscodec/cpu_features.h); it only ever lowers the level.
SIMD_CAPS = ("portable", "sse2", "avx2", "avx512", "neon")
#: Written by the build (setup.py) into a package built without the compiled module.
BUILD_NOTE = Path(__file__).with_name("_build_note.txt")


def missing_reason(error: ImportError, note: Path = BUILD_NOTE) -> str:
    """Why the compiled module could not be loaded, as plainly as the facts allow."""
    if isinstance(error, ModuleNotFoundError) and error.name == COMPILED_NAME:
        try:
            recorded = note.read_text(encoding="utf-8").strip()
        except OSError:
            recorded = ""
        if recorded:
            return f"not built when wscodec was installed: {recorded}"
        return f"{COMPILED_NAME} is not installed (this install has no compiled module)"
    return f"the compiled module did not import: {error}"


#: The compiled module when it could be imported, whether or not it is active.
compiled_codec: Optional[ModuleType]
#: Why the compiled module could not be imported (``None`` when it was).
compiled_error: Optional[str]
try:
    compiled_codec = importlib.import_module(COMPILED_NAME)
except ImportError as error:
    compiled_codec = None
    compiled_error = missing_reason(error)
else:
    compiled_error = None

EXTENSION_ERROR: Optional[str]
codec: ModuleType
if os.environ.get("WSCODEC_NO_EXTENSIONS", "") not in ("", "0"):
    EXTENSION_ERROR = "WSCODEC_NO_EXTENSIONS is set"
    codec = python_codec
elif compiled_codec is None:
    EXTENSION_ERROR = compiled_error
    codec = python_codec
else:
    EXTENSION_ERROR = None
    codec = compiled_codec

BACKEND = "python" if codec is python_codec else "cython"


#: The compiled twins setup.py builds (its ``TWINS``), by the module each serves.
TWINS = {
    "wscodec.connection": "wscodec._connection_c",
    "wscodec.receive_buffer": "wscodec._receive_buffer_c",
    "wscodec.asyncio.messages": "wscodec.asyncio._messages_c",
    "wscodec.asyncio.connection": "wscodec.asyncio._connection_c",
}


def twins_in_use() -> List[str]:
    """The compiled twins that imported, when the compiled backend is active."""
    return [name for name in TWINS.values() if compiled_twin(name) is not None]


def compiled_twin(name: str) -> Optional[ModuleType]:
    """The compiled build of a protocol module's own source, when it is in use.

    setup.py compiles each module of :data:`TWINS` a second time, under the
    name it maps to (``wscodec/connection.py`` as ``wscodec._connection_c``...):
    the same code, with the classes made extension types. Each module swaps
    its class for the compiled one when the compiled codec is active and
    ``name`` imports; None otherwise.
    """
    if codec is python_codec:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def check_simd_cap(value: Optional[str]) -> Optional[str]:
    """A warning's text when ``value`` (WSCODEC_SIMD) is set but names no level, else None.

    The compiled kernels ignore a value they do not know and pick the best level;
    a typo should not pass silently.
    """
    if not value or value in SIMD_CAPS:
        return None
    return (
        f"WSCODEC_SIMD={value!r} is not a known level and is ignored (the best level is used); "
        f"valid values: {', '.join(SIMD_CAPS)}"
    )


_simd_warning = check_simd_cap(os.environ.get("WSCODEC_SIMD"))
if _simd_warning is not None:
    warnings.warn(_simd_warning, RuntimeWarning, stacklevel=1)
