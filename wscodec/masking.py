"""Masking in pure Python: the twin of the compiled codec's ``apply_mask`` and ``apply_mask_into``.

Part of :mod:`wscodec.codec`, which re-exports it; use the names from there
(or from :mod:`wscodec`, which picks the compiled twin when it is built).
Speed comes from CPython's C-level helpers: big-integer XOR, and
``bytes.translate`` with one table per key byte.
"""

from __future__ import annotations

import operator
from typing import Optional, Union

from .protocol import Errors

__all__ = ["apply_mask", "apply_mask_into"]

BytesLike = Union[bytes, bytearray, memoryview]


def _byte_view(data: object) -> memoryview:
    """A flat, read-only-or-not view of ``data`` in bytes, or TypeError."""
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(Errors.NOT_BYTES_LIKE.format(type=type(data).__name__)) from None
    if not view.c_contiguous:
        raise TypeError(Errors.NOT_BYTES_LIKE.format(type=type(data).__name__))
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    return view


def _check_mask(mask: object) -> bytes:
    key = bytes(_byte_view(mask))
    if len(key) != 4:
        raise ValueError(Errors.BAD_MASK)
    return key


# XOR tables for the translate path: _XOR_TABLES[k][b] == b ^ k.
_XOR_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]

# Below this size one big-integer XOR is fastest (fewest calls); above it four
# strided bytes.translate passes are (~0.9 GB/s against ~0.3 GB/s at 1 MiB:
# int.from_bytes/to_bytes convert through 30-bit digits).
_TRANSLATE_FROM = 512


def _xor_int(data: BytesLike, key: bytes, phase: int) -> bytes:
    length = len(data)
    if phase:
        key = key[phase:] + key[:phase]
    stream = (key * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        length, "little"
    )


def _xor_translate_into(
    target: Union[bytearray, memoryview],
    key: bytes,
    phase: int,
    start: int = 0,
    end: Optional[int] = None,
) -> None:
    """XOR ``target[start:end]`` in place, one strided translate per key byte."""
    tables = _XOR_TABLES
    if isinstance(target, bytearray):
        # Unrolled: on a 1 KiB payload a loop over the four lanes (its slice
        # objects and index arithmetic) cost a quarter of the unmasking time.
        second, third, fourth = start + 1, start + 2, start + 3
        target[start:end:4] = target[start:end:4].translate(tables[key[phase]])
        target[second:end:4] = target[second:end:4].translate(tables[key[(phase + 1) & 3]])
        target[third:end:4] = target[third:end:4].translate(tables[key[(phase + 2) & 3]])
        target[fourth:end:4] = target[fourth:end:4].translate(tables[key[(phase + 3) & 3]])
        return
    for lane in range(4):  # a memoryview's slices have no translate(): copied out
        lanes = slice(start + lane, end, 4)
        target[lanes] = target[lanes].tobytes().translate(tables[key[(phase + lane) & 3]])


def _unmask_in(buffer: bytearray, start: int, end: int, key: bytes) -> bytes:
    """``buffer[start:end]`` unmasked, as bytes; large payloads are unmasked in place.

    The parser owns ``buffer`` and drops these bytes next, so a large payload
    needs no copy of its own before the translate passes (one temporary of
    the payload's size less, which on a busy heap also meant fresh pages).
    """
    if end - start < _TRANSLATE_FROM:
        return _xor(memoryview(buffer)[start:end], key)
    _xor_translate_into(buffer, key, 0, start, end)
    return bytes(memoryview(buffer)[start:end])


def _xor(data: BytesLike, key: bytes, phase: int = 0) -> bytes:
    """``data`` XOR ``key`` repeated, starting at ``key[phase]``."""
    length = len(data)
    if length == 0:
        return b""
    if length < _TRANSLATE_FROM:
        return _xor_int(data, key, phase)
    buffer = bytearray(data)
    _xor_translate_into(buffer, key, phase)
    return bytes(buffer)


def apply_mask(data: BytesLike, mask: BytesLike) -> bytes:
    """Return ``data`` XOR-ed with the 4-byte ``mask`` repeated.

    Masking is its own inverse: the same call masks and unmasks. Raises
    :class:`ValueError` if ``mask`` is not exactly 4 bytes and
    :class:`TypeError` if either argument is not bytes-like.
    """
    if type(data) is bytes and type(mask) is bytes and len(mask) == 4:
        # The common case, without the views.
        length = len(data)
        if 0 < length < _TRANSLATE_FROM:
            return (
                int.from_bytes(data, "little")
                ^ int.from_bytes((mask * (length // 4 + 1))[:length], "little")
            ).to_bytes(length, "little")
        return _xor(data, mask)
    view = _byte_view(data)
    return _xor(view, _check_mask(mask))


def apply_mask_into(buffer: Union[bytearray, memoryview], mask: BytesLike, offset: int = 0) -> None:
    """XOR the writable ``buffer`` in place with the 4-byte ``mask``.

    ``offset`` is how many bytes of the same payload came before ``buffer``:
    ``buffer[0]`` is XOR-ed with ``mask[offset % 4]``. This lets a payload
    that arrives in pieces be unmasked piece by piece without copies.
    """
    if (
        type(buffer) is bytearray
        and type(mask) is bytes
        and len(mask) == 4
        and type(offset) is int
        and offset >= 0
    ):
        # The common case, a bytearray and a bytes key, without the checks.
        # Exported (by the view, released on return) from reading to writing,
        # as by the compiled twin: a thread resizing the buffer meanwhile gets
        # BufferError, rather than its resize undone by bytes of the old size.
        # Same-size writes are allowed while exported.
        export = memoryview(buffer)  # noqa: F841
        length = len(buffer)
        phase = offset % 4
        if length >= _TRANSLATE_FROM:
            _xor_translate_into(buffer, mask, phase)
        elif length:
            key = mask[phase:] + mask[:phase] if phase else mask
            buffer[:] = (
                int.from_bytes(buffer, "little")
                ^ int.from_bytes((key * (length // 4 + 1))[:length], "little")
            ).to_bytes(length, "little")
        return
    try:
        view = memoryview(buffer)
    except TypeError:
        raise TypeError(Errors.NOT_WRITABLE.format(type=type(buffer).__name__)) from None
    if view.readonly or not view.c_contiguous:
        raise TypeError(Errors.NOT_WRITABLE.format(type=type(buffer).__name__))
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    key = _check_mask(mask)
    offset = operator.index(offset)
    if offset < 0:
        raise ValueError(Errors.NEGATIVE_OFFSET)
    if len(view) < _TRANSLATE_FROM:
        view[:] = _xor_int(view, key, offset % 4) if len(view) else b""
    elif type(buffer) is bytearray:
        _xor_translate_into(buffer, key, offset % 4)
    else:
        _xor_translate_into(view, key, offset % 4)
