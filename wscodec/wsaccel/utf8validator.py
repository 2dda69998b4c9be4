"""``wsaccel.utf8validator`` on wscodec: ``Utf8Validator``."""

from __future__ import annotations

from ..integrations._compat import QuadUtf8Validator

__all__ = ["Utf8Validator"]


class Utf8Validator(QuadUtf8Validator):
    """Incremental UTF-8 validation with wsaccel's ``validate`` quad."""

    __slots__ = ()
