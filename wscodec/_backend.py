"""Pick the codec backend once, at import.

The compiled module ``wscodec._codec`` is used when it imports and
``WSCODEC_NO_EXTENSIONS`` is unset (or "0"); otherwise the pure-Python twin
``wscodec.codec``. ``BACKEND`` names the choice and ``EXTENSION_ERROR`` says
why the compiled module is not in use (``None`` when it is).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Optional

from . import codec as python_codec

__all__ = ["BACKEND", "EXTENSION_ERROR", "codec", "compiled_codec", "python_codec"]

#: The compiled module when it could be imported, whether or not it is active.
compiled_codec: Optional[ModuleType]
_import_error: Optional[str]
try:
    from . import _codec as compiled_codec
except ImportError as error:
    compiled_codec = None
    _import_error = f"the compiled module did not import: {error}"
else:
    _import_error = None

EXTENSION_ERROR: Optional[str]
codec: ModuleType
if os.environ.get("WSCODEC_NO_EXTENSIONS", "") not in ("", "0"):
    EXTENSION_ERROR = "WSCODEC_NO_EXTENSIONS is set"
    codec = python_codec
elif compiled_codec is None:
    EXTENSION_ERROR = _import_error
    codec = python_codec
else:
    EXTENSION_ERROR = None
    codec = compiled_codec

BACKEND = "python" if codec is python_codec else "cython"
