"""The pure-Python codec: the twin of the compiled ``src/wscodec/_codec.pyx``.

Same names, same results and same exceptions on every input as the compiled
module; it runs wherever the extension is missing (PyPy, no compiler) or when
``WSCODEC_NO_EXTENSIONS=1`` is set. Speed comes from CPython's C-level helpers
(big-integer XOR for masking, the strict UTF-8 codec for validation) rather
than from loops over bytes.
"""

from __future__ import annotations

import operator
import struct
import sys
from typing import List, Optional, Tuple, Union

from .exceptions import PayloadTooBig, ProtocolError
from .masking import _byte_view, _check_mask, _unmask_in, _xor, apply_mask, apply_mask_into
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
from .utf8 import Utf8Validator, _busy, validate_utf8

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

    def whole_message(self, data: BytesLike) -> Union[bytes, str, None]:
        """``data`` as one message, when it is exactly one small whole message's frame.

        Returns the payload, unmasked: ``bytes`` for a binary frame, ``str``
        for a text frame. That is when nothing is buffered and ``data`` holds
        one final text or binary frame, without RSV bits, masked as expected,
        with a 7- or 16-bit length within ``max_frame_size`` and, for text,
        valid UTF-8; and nothing more. Otherwise None, and the parser is
        unchanged: :meth:`feed` the same ``data``, which applies every rule
        (and raises what the frame breaks).

        The shortcut of a reader that gets one small message per read, the
        usual case of a request and answer protocol: no :class:`Frame` is made.
        """
        token = self._token
        try:
            token.pop()
        except IndexError:
            raise _busy("FrameParser") from None
        try:
            if self._error is not None or self._buffer:
                return None
            return self._whole_message(_byte_view(data))
        finally:
            token.append(True)

    def _whole_message(self, view: memoryview) -> Union[bytes, str, None]:
        size = len(view)
        if size < 2:
            return None
        first, second = view[0], view[1]
        if first not in (0x81, 0x82) or bool(second & 0x80) != self._mask_expected:
            return None
        length = second & 0x7F
        header = 2
        if length == 127:
            return None
        if length == 126:
            if size < 4:
                return None
            length = (view[2] << 8) | view[3]
            header = 4
        if self._max_frame_size is not None and length > self._max_frame_size:
            return None
        key = None
        if second & 0x80:
            key = bytes(view[header : header + 4])
            header += 4
        if size != header + length:
            return None
        payload = bytes(view[header:])
        if key is not None:
            payload = _xor(payload, key, 0)
        if first == 0x82:
            return payload
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return None

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
