"""Objects with the interfaces older accelerators exposed, on wscodec's kernels.

autobahn, ws4py and wsaccel share two shapes: a stateful XOR masker
(``process(data) -> bytes``, ``pointer()``, ``reset()``), whose mask position
carries across calls, and an incremental UTF-8 validator whose
``validate(chunk)`` returns ``(valid, ends_on_codepoint, current_index,
total_index)``. Both run on the active backend (``wscodec._backend.codec``).
"""

from __future__ import annotations

import codecs
from typing import Any, Optional, Tuple

from .._backend import codec

__all__ = ["StatefulMasker", "NullMasker", "QuadUtf8Validator", "pending_tail"]

UTF8_ACCEPT = 0
UTF8_REJECT = 1
_UTF8_MORE = 2  # neither: a code point is under way


class StatefulMasker:
    """XOR with a 4-byte mask, continuing where the previous call stopped."""

    __slots__ = ("_mask", "_ptr")

    def __init__(self, mask: Any, length: Optional[int] = None) -> None:
        mask = bytes(mask)
        if len(mask) != 4:
            raise ValueError("mask must contain 4 bytes")
        self._mask = mask
        self._ptr = 0

    def pointer(self) -> int:
        """How many bytes were processed since creation or :meth:`reset`."""
        return self._ptr

    def reset(self) -> None:
        """Start again at the first byte of the mask."""
        self._ptr = 0

    def process(self, data: Any) -> bytes:
        """``data`` XOR-ed with the mask, starting at the current mask position."""
        phase = self._ptr & 3
        key = self._mask[phase:] + self._mask[:phase] if phase else self._mask
        out: bytes = codec.apply_mask(data, key)
        self._ptr += len(out)
        return out


class NullMasker:
    """The pass-through masker: counts bytes, changes nothing."""

    __slots__ = ("_ptr",)

    def __init__(self, mask: Any = None) -> None:
        self._ptr = 0

    def pointer(self) -> int:
        """How many bytes went through."""
        return self._ptr

    def reset(self) -> None:
        """Set the count back to 0."""
        self._ptr = 0

    def process(self, data: Any) -> Any:
        """``data`` itself."""
        self._ptr += len(data)
        return data


def pending_tail(data: bytes) -> bytes:
    """The unfinished code point at the end of valid UTF-8 ``data`` (0-3 bytes)."""
    for back in range(1, min(3, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte or ASCII
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data[-back:] if back < need else b""
    return b""


def _failing_index(tail: bytes, chunk: bytes) -> int:
    """Index in ``chunk`` of the first byte that makes ``tail + chunk`` invalid."""
    data = tail + chunk
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(data, False)
    except UnicodeDecodeError as error:
        index = error.start if error.reason == "invalid start byte" else error.end
    else:
        # CPython keeps ED A0..BF pending; the second byte is the bad one.
        index = len(data) - len(decoder.getstate()[0]) + 1
    return max(index - len(tail), 0)


class QuadUtf8Validator:
    """Incremental UTF-8 validation with the autobahn/wsaccel ``validate`` contract.

    ``validate(chunk)`` returns ``(valid, ends_on_codepoint, current_index,
    total_index)``: on success ``current_index`` is ``len(chunk)`` and
    ``total_index`` the bytes consumed since :meth:`reset`; on failure they
    are the index of the offending byte in the chunk and in the whole input.
    Once invalid it stays invalid until :meth:`reset`.
    """

    __slots__ = ("_failed", "_tail", "_total", "_validator")

    UTF8_ACCEPT = UTF8_ACCEPT
    UTF8_REJECT = UTF8_REJECT

    def __init__(self) -> None:
        self._validator = codec.Utf8Validator()
        self._tail = b""
        self._total = 0
        self._failed: Optional[Tuple[bool, bool, int, int]] = None

    def reset(self) -> None:
        """Start a new input."""
        self._validator.reset()
        self._tail = b""
        self._total = 0
        self._failed = None

    def validate(self, ba: Any) -> Tuple[bool, bool, int, int]:
        """Validate the next chunk; see the class docstring for the result."""
        if self._failed is not None:
            return (False, False, 0, self._failed[3])
        chunk = bytes(ba)
        if self._validator.feed(chunk):
            self._total += len(chunk)
            self._tail = pending_tail(self._tail + chunk[-3:])
            return (True, not self._tail, len(chunk), self._total)
        index = _failing_index(self._tail, chunk)
        self._failed = (False, False, index, self._total + index)
        return self._failed

    def decode(self, b: int) -> int:
        """Eat one byte: ``UTF8_ACCEPT`` (0) at a code point boundary, ``UTF8_REJECT`` (1)."""
        valid, ends, _, _ = self.validate(bytes((b,)))
        if not valid:
            return UTF8_REJECT
        return UTF8_ACCEPT if ends else _UTF8_MORE
