"""``wsaccel.xormask`` on wscodec: ``XorMaskerSimple``, ``XorMaskerNull``, ``createXorMasker``."""

from __future__ import annotations

from typing import Any, Optional, Union

from ..integrations._compat import NullMasker, StatefulMasker

__all__ = ["XorMaskerNull", "XorMaskerSimple", "createXorMasker"]


class XorMaskerSimple(StatefulMasker):
    """XOR with a 4-byte mask; the position carries across ``process`` calls."""

    __slots__ = ()


class XorMaskerNull(NullMasker):
    """Leaves data unchanged (for unmasked frames)."""

    __slots__ = ()


def createXorMasker(
    mask: Any, length: Optional[int] = None
) -> Union[XorMaskerSimple, XorMaskerNull]:
    """A masker for ``mask``; ``length`` is accepted for compatibility and ignored."""
    return XorMaskerSimple(mask)
