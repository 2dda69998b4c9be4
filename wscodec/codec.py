"""The pure-Python codec: the twin of the compiled ``src/wscodec/_codec.pyx``.

Same names, same results and same exceptions on every input as the compiled
module; it runs wherever the extension is missing (PyPy, no compiler) or when
``WSCODEC_NO_EXTENSIONS=1`` is set. Speed comes from CPython's C-level helpers
(big-integer XOR for masking, the strict UTF-8 codec for validation) rather
than from loops over bytes.
"""

from __future__ import annotations

import codecs
import operator
import struct
import sys
from typing import List, Optional, Tuple, Union

from .exceptions import PayloadTooBig, ProtocolError
from .protocol import (
    MAX_CONTROL_PAYLOAD,
    OPCODE_BY_VALUE,
    RSV1,
    RSV2,
    RSV3,
    CloseCode,
    Errors,
    Frame,
    Opcode,
    parse_close_payload,
)

__all__ = [
    "apply_mask",
    "apply_mask_into",
    "validate_utf8",
    "Utf8Validator",
    "FrameParser",
    "encode_frame",
]

BytesLike = Union[bytes, bytearray, memoryview]

_ALL_RSV = RSV1 | RSV2 | RSV3
# Read once per frame: on CPython 3.11 a member read off its Enum class costs ~170 ns.
_CLOSE = Opcode.CLOSE


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


_tuple_new = tuple.__new__
_PACK_MEDIUM = struct.Struct("!BBH").pack
# Data opcodes (ints; Opcode members hash and compare equal) -> first byte with FIN.
_DATA_FIRST = {int(op): 0x80 | op for op in OPCODE_BY_VALUE if op is not None and op < 0x8}
_PACK_LONG = struct.Struct("!BBQ").pack
# Unmasked headers of every 7-bit length, for each first byte of a data frame.
_SHORT_HEADERS = {
    first: [bytes((first, length)) for length in range(126)]
    for first in range(256)
    if first & 0x0F < 0x8 and OPCODE_BY_VALUE[first & 0x0F] is not None
}


def data_frame_header(opcode: int, length: int, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """The header of an unmasked data frame whose ``length``-byte payload is written apart.

    What :func:`encode_frame` puts before the payload of a server frame; a
    large payload can then go to the socket beside its header, uncopied.
    """
    first = _DATA_FIRST[operator.index(opcode)]
    if not fin:
        first &= 0x7F
    if rsv1:
        first |= RSV1
    if length < 126:
        return _SHORT_HEADERS[first][length]
    if length < 65536:
        return _PACK_MEDIUM(first, 126, length)
    return _PACK_LONG(first, 127, length)


def _key_stream(key: bytearray) -> int:
    """The 4-byte key repeated over 128 bytes, as a little-endian integer."""
    return int.from_bytes(bytes(key) * 32, "little")


_KEY_STREAM = _key_stream


def _fast_table(allowed_rsv: int) -> List[Optional[Tuple[Opcode, bool, bool, bool, bool]]]:
    """For each first header byte: the frame's (opcode, fin, rsv1, rsv2, rsv3)
    when it is a data frame that passes every first-byte rule, else None."""
    table: List[Optional[Tuple[Opcode, bool, bool, bool, bool]]] = [None] * 256
    for first in range(256):
        opcode = OPCODE_BY_VALUE[first & 0x0F]
        if opcode is None or opcode >= 0x8 or first & _ALL_RSV & ~allowed_rsv:
            continue
        table[first] = (
            opcode,
            bool(first & 0x80),
            bool(first & RSV1),
            bool(first & RSV2),
            bool(first & RSV3),
        )
    return table


class FrameParser:
    """Incremental RFC 6455 frame parser.

    :meth:`feed` takes bytes as they arrive, in chunks of any size, and
    returns the frames completed so far with their payloads unmasked. Every
    rule of the frame format is checked, in the order the bytes arrive, and a
    violation raises :class:`ProtocolError` whose ``code`` is the close code
    to send (1002, 1007 or 1009). Frames completed before the bad one in the
    same call are on the exception's ``frames`` attribute, so nothing the peer
    sent correctly is lost. After an error the parser stays failed: every
    later call raises the same error.

    :param mask_expected: True on the server side (client frames must be
        masked), False on the client side (server frames must not be).
    :param max_frame_size: largest payload accepted, checked from the header
        before the payload is buffered (1009 above it); ``None`` for no limit.
    :param allowed_rsv: RSV bits (``RSV1 | RSV2 | RSV3``) that a negotiated
        extension allows on data frames; control frames never carry them.

    One thread at a time: :meth:`feed`, :meth:`pending_payload` or setting
    :attr:`allowed_rsv` while another of these calls is in progress (from a
    second thread, or from code that the first runs) raises
    :class:`RuntimeError` and changes nothing.
    """

    __slots__ = (
        "_allowed_rsv",
        "_buffer",
        "_error",
        "_fast",
        "_mask_expected",
        "_max_frame_size",
        "_token",
    )

    def __init__(
        self,
        *,
        mask_expected: bool,
        max_frame_size: Optional[int] = 2**20,
        allowed_rsv: int = 0,
    ) -> None:
        if max_frame_size is not None and (
            not isinstance(max_frame_size, int)
            or isinstance(max_frame_size, bool)
            or max_frame_size < 0
        ):
            raise ValueError(Errors.BAD_LIMIT)
        if allowed_rsv & ~_ALL_RSV:
            raise ValueError(Errors.BAD_RSV)
        self._mask_expected = bool(mask_expected)
        self._max_frame_size = max_frame_size
        self._allowed_rsv = allowed_rsv
        self._fast = _fast_table(allowed_rsv)
        self._buffer = bytearray()
        self._error: Optional[ProtocolError] = None
        self._token = [True]  # taken while a method runs (see _busy)

    @property
    def mask_expected(self) -> bool:
        return self._mask_expected

    @property
    def max_frame_size(self) -> Optional[int]:
        return self._max_frame_size

    @property
    def allowed_rsv(self) -> int:
        """RSV bits accepted on data frames; settable once an extension is agreed."""
        return self._allowed_rsv

    @allowed_rsv.setter
    def allowed_rsv(self, bits: int) -> None:
        if bits & ~_ALL_RSV:
            raise ValueError(Errors.BAD_RSV)
        token = self._token
        try:
            token.pop()
        except IndexError:
            raise _busy("FrameParser") from None
        try:
            self._allowed_rsv = bits
            self._fast = _fast_table(bits)
        finally:
            token.append(True)

    @property
    def buffered(self) -> int:
        """Bytes received that belong to a frame not yet complete."""
        return len(self._buffer)

    def pending_payload(self, offset: int = 0) -> Optional[Tuple[Opcode, bool, bytes]]:
        """The frame whose payload is arriving: ``(opcode, rsv1, data)``.

        ``data`` is its payload received so far from ``offset`` on, unmasked,
        so that a text frame can be validated before it is complete (fail
        fast). ``None`` until a frame's header is complete, between frames,
        and after an error.
        """
        if offset < 0:
            raise ValueError(Errors.NEGATIVE_OFFSET)
        token = self._token
        try:
            token.pop()
        except IndexError:
            raise _busy("FrameParser") from None
        try:
            buffer = self._buffer
            if self._error is not None or len(buffer) < 2:
                return None
            length_field = buffer[1] & 0x7F
            masked = buffer[1] & 0x80
            header = 2 + (2 if length_field == 126 else 8 if length_field == 127 else 0)
            header += 4 if masked else 0
            if len(buffer) < header:
                return None
            start = min(header + offset, len(buffer))
            data = bytes(buffer[start:])
            if masked:
                data = _xor(data, bytes(buffer[header - 4 : header]), (start - header) % 4)
            opcode = OPCODE_BY_VALUE[buffer[0] & 0x0F]
            assert opcode is not None  # checked when the header arrived
            return opcode, bool(buffer[0] & RSV1), data
        finally:
            token.append(True)

    def feed(self, data: BytesLike) -> List[Frame]:
        """Parse ``data``; return every frame it completed, in order."""
        token = self._token
        try:
            token.pop()
        except IndexError:
            raise _busy("FrameParser") from None
        try:
            if self._error is not None:
                self._error.frames = []
                raise self._error
            view = _byte_view(data)
            buffer = self._buffer
            buffer += view
            frames: List[Frame] = []
            position = 0
            end = len(buffer)
            fast = self._fast
            masked = self._mask_expected
            mask_bit = 0x80 if masked else 0
            header = 6 if masked else 2
            limit = self._max_frame_size
            small = 125 if limit is None else min(limit, 125)
            append = frames.append
            try:
                while True:
                    # Fast path: a data frame with a 7-bit length, its header bytes
                    # all checked at once (every rule _frame_size would apply).
                    if end - position >= 2:
                        fields = fast[buffer[position]]
                        second = buffer[position + 1]
                        length = second & 0x7F
                        if fields is not None and second & 0x80 == mask_bit and length <= small:
                            start = position + header
                            stop = start + length
                            if stop > end:
                                break
                            if not masked:
                                payload = bytes(buffer[start:stop])
                            elif length:
                                key = _KEY_STREAM(buffer[start - 4 : start])
                                payload = (
                                    int.from_bytes(buffer[start:stop], "little")
                                    ^ (key & ((1 << (8 * length)) - 1))
                                ).to_bytes(length, "little")
                            else:
                                payload = b""
                            append(_tuple_new(Frame, (fields[0], payload, *fields[1:])))
                            position = stop
                            continue
                    size = self._frame_size(buffer, position)
                    if size is None or len(buffer) - position < size:
                        break
                    frames.append(self._decode(buffer, position, size))
                    position += size
            except ProtocolError as error:
                self._error = error
                self._buffer = bytearray()
                error.frames = frames
                raise
            finally:
                if position:
                    del buffer[:position]
            return frames
        finally:
            token.append(True)

    def _frame_size(self, buf: bytearray, pos: int) -> Optional[int]:
        """Check the header bytes present at ``pos``; total frame size once known."""
        available = len(buf) - pos
        if available < 1:
            return None
        first = buf[pos]
        opcode = first & 0x0F
        if OPCODE_BY_VALUE[opcode] is None:
            raise ProtocolError(
                CloseCode.PROTOCOL_ERROR, Errors.RESERVED_OPCODE.format(opcode=opcode)
            )
        control = opcode >= 0x8
        rsv = first & _ALL_RSV
        if rsv & ~(0 if control else self._allowed_rsv):
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, Errors.RESERVED_BITS.format(bits=rsv))
        if control and not first & 0x80:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, Errors.FRAGMENTED_CONTROL)
        if available < 2:
            return None
        second = buf[pos + 1]
        masked = bool(second & 0x80)
        if masked != self._mask_expected:
            raise ProtocolError(
                CloseCode.PROTOCOL_ERROR, Errors.UNMASKED if self._mask_expected else Errors.MASKED
            )
        length = second & 0x7F
        if control and length > MAX_CONTROL_PAYLOAD:
            raise ProtocolError(
                CloseCode.PROTOCOL_ERROR, Errors.CONTROL_TOO_LONG.format(length=length)
            )
        header = 2
        if length == 126:
            header = 4
            if available < header:
                return None
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
        elif length == 127:
            header = 10
            if available < header:
                return None
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            if length >> 63:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, Errors.LENGTH_MSB)
        limit = self._max_frame_size
        if limit is not None and length > limit:
            raise PayloadTooBig(Errors.TOO_BIG.format(length=length, limit=limit))
        if length > sys.maxsize:
            raise PayloadTooBig(Errors.TOO_BIG.format(length=length, limit=sys.maxsize))
        return header + (4 if masked else 0) + length

    def _decode(self, buf: bytearray, pos: int, size: int) -> Frame:
        """Build the complete, already checked frame of ``size`` bytes at ``pos``."""
        first = buf[pos]
        length_field = buf[pos + 1] & 0x7F
        start = pos + (2 if length_field < 126 else 4 if length_field == 126 else 10)
        end = pos + size
        if self._mask_expected:
            payload = _unmask_in(buf, start + 4, end, bytes(buf[start : start + 4]))
        else:
            payload = bytes(buf[start:end])
        opcode = OPCODE_BY_VALUE[first & 0x0F]
        assert opcode is not None  # checked by _frame_size
        if opcode is _CLOSE:
            parse_close_payload(payload)
        return Frame(
            opcode,
            payload,
            bool(first & 0x80),
            bool(first & RSV1),
            bool(first & RSV2),
            bool(first & RSV3),
        )


def encode_frame(
    opcode: int,
    payload: BytesLike,
    *,
    fin: bool = True,
    mask: Optional[BytesLike] = None,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
) -> bytes:
    """Serialise one frame, with the minimal length encoding.

    ``mask`` is the 4-byte masking key that client frames must carry; ``None``
    (the server side) sends the payload as is. Control frames must have
    ``fin`` set and at most 125 bytes of payload (:class:`ValueError`).
    """
    if mask is None and type(payload) is bytes and (type(opcode) is Opcode or type(opcode) is int):
        # The common server data frame: no view, no checks a data frame
        # cannot fail, the header from a table or one struct pack.
        first = _DATA_FIRST.get(opcode)
        if first is not None:
            if not fin:
                first &= 0x7F
            if rsv1 or rsv2 or rsv3:
                first |= (RSV1 if rsv1 else 0) | (RSV2 if rsv2 else 0) | (RSV3 if rsv3 else 0)
            length = len(payload)
            if length < 126:
                return _SHORT_HEADERS[first][length] + payload
            if length < 65536:
                return _PACK_MEDIUM(first, 126, length) + payload
            return _PACK_LONG(first, 127, length) + payload
    code = operator.index(opcode)
    if not 0 <= code < 16 or OPCODE_BY_VALUE[code] is None:
        raise ValueError(Errors.BAD_OPCODE.format(opcode=opcode))
    view = _byte_view(payload)
    length = view.nbytes
    if code >= 0x8:
        if not fin:
            raise ValueError(Errors.ENCODE_FRAGMENTED_CONTROL)
        if length > MAX_CONTROL_PAYLOAD:
            raise ValueError(Errors.ENCODE_CONTROL_TOO_LONG.format(length=length))
    key = None if mask is None else _check_mask(mask)
    first = code | (0x80 if fin else 0) | (RSV1 if rsv1 else 0)
    first |= (RSV2 if rsv2 else 0) | (RSV3 if rsv3 else 0)
    mask_bit = 0x80 if key is not None else 0
    if length < 126:
        header = bytes((first, mask_bit | length))
    elif length < 65536:
        header = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
    if key is None:
        return header + view
    return header + key + _xor(view, key)
