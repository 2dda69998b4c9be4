"""UTF-8 validation in pure Python: the twin of the compiled validator.

The compiled module's ``validate_utf8`` and ``Utf8Validator``, with the same results.

Part of :mod:`wscodec.codec`, which re-exports it; use the names from there
(or from :mod:`wscodec`). CPython's strict UTF-8 codec does the checking.
"""

from __future__ import annotations

import codecs
from typing import Union

from .masking import _byte_view
from .protocol import Errors

__all__ = ["Utf8Validator", "validate_utf8"]

BytesLike = Union[bytes, bytearray, memoryview]


def validate_utf8(data: BytesLike) -> bool:
    """Whether ``data`` is valid UTF-8 under RFC 3629.

    Overlong forms, surrogates (U+D800..U+DFFF), code points above U+10FFFF,
    truncated sequences and stray continuation bytes are all invalid.
    """
    try:
        if type(data) is bytes:
            data.decode("utf-8")
        else:
            str(_byte_view(data), "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _busy(name: str) -> RuntimeError:
    """The error of a second call into a one-call-at-a-time object.

    Each such object holds a list with one token: a call takes it with
    ``pop()`` and puts it back when done, so a call finding the list empty
    overlaps another one, from a second thread or from code the first runs.
    ``list.pop()`` and ``append()`` are atomic, with the GIL or without it
    (free-threaded builds), and cost less than a lock's ``acquire(False)``.
    The compiled twin raises the same error from its busy flag (busy.h).
    """
    return RuntimeError(Errors.CONCURRENT_USE.format(name=name))


def _is_surrogate_prefix(pending: bytes) -> bool:
    """ED followed by A0-BF can only become a surrogate (U+D800..U+DFFF).

    CPython's decoder keeps these two bytes pending instead of failing; it is
    the one prefix it waits on that can never complete into valid UTF-8.
    """
    return len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0


class Utf8Validator:
    """Incremental UTF-8 validation that fails fast.

    Feed a text message fragment by fragment: :meth:`feed` returns False as
    soon as the bytes seen so far cannot begin any valid UTF-8 text, and keeps
    returning False afterwards. :meth:`finish` says whether the whole input
    was valid (False if it ended inside a sequence) and resets the validator
    for the next message. A code point may be split across chunks at any byte.

    One thread at a time: a call while another is in progress (from a second
    thread, or from code that the first runs) raises :class:`RuntimeError`.
    """

    __slots__ = ("_decoder", "_token", "_valid")

    def __init__(self) -> None:
        # CPython's decoder reports an error at the first byte that makes the
        # input invalid and keeps a valid partial sequence pending otherwise:
        # the fail-fast contract, but for one prefix (see _is_surrogate_prefix).
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._valid = True
        self._token = [True]  # taken while a method runs (see _busy)

    def feed(self, data: BytesLike) -> bool:
        """Validate the next chunk; False once the input can no longer be valid."""
        token = self._token
        try:
            token.pop()
        except IndexError:
            raise _busy("Utf8Validator") from None
        try:
            view = _byte_view(data)
            valid = self._valid
            if valid:
                try:
                    self._decoder.decode(view, False)
                except UnicodeDecodeError:
                    valid = self._valid = False
                else:
                    valid = self._valid = not _is_surrogate_prefix(self._decoder.getstate()[0])
        finally:
            token.append(True)
        return valid

    def finish(self) -> bool:
        """True if everything fed was valid and complete; then reset."""
        token = self._token
        try:
            token.pop()
        except IndexError:
            raise _busy("Utf8Validator") from None
        try:
            valid = self._valid
            if valid:
                try:
                    self._decoder.decode(b"", True)
                except UnicodeDecodeError:
                    valid = False
            self._decoder.reset()
            self._valid = True
        finally:
            token.append(True)
        return valid

    def reset(self) -> None:
        """Forget everything fed so far."""
        token = self._token
        try:
            token.pop()
        except IndexError:
            raise _busy("Utf8Validator") from None
        try:
            self._decoder.reset()
            self._valid = True
        finally:
            token.append(True)
