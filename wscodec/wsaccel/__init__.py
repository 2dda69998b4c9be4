"""A drop-in for wsaccel's module surface, on wscodec's kernels.

Code written for wsaccel switches by import alone::

    import wscodec.wsaccel as wsaccel          # instead of: import wsaccel
    from wscodec.wsaccel.xormask import XorMaskerSimple, createXorMasker
    from wscodec.wsaccel.utf8validator import Utf8Validator

Same contracts as wsaccel: ``XorMaskerSimple(mask).process(data) -> bytes``
keeps its mask position across calls (``pointer()``, ``reset()``);
``XorMaskerNull`` passes data through; ``createXorMasker(mask, length=None)``;
``Utf8Validator().validate(chunk)`` returns ``(valid, ends_on_codepoint,
current_index, total_index)`` and stays invalid until ``reset()``.
``patch_autobahn()`` is not provided (it patched nothing on current
autobahn); use :mod:`wscodec.integrations.autobahn`.

Here: wsaccel's modules ``xormask`` and ``utf8validator``, on wscodec's kernels.
May import the core and the integrations' shared helpers; never a flavour, the CLI or the demo.
"""

from __future__ import annotations

from . import utf8validator, xormask
from .utf8validator import Utf8Validator
from .xormask import XorMaskerNull, XorMaskerSimple, createXorMasker

__all__ = [
    "Utf8Validator",
    "XorMaskerNull",
    "XorMaskerSimple",
    "createXorMasker",
    "utf8validator",
    "xormask",
]
