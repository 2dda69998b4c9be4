"""The rules of RFC 6455 that both codec backends enforce, written down once.

Everything a backend needs to agree on lives here: the opcode table, the
:class:`Frame` type, close codes, default limits and the exact text of every
protocol error. The compiled module and its pure-Python twin both import these
names, so the two can never disagree on a rule or on an error message.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Optional, Tuple

from .exceptions import InvalidUtf8, ProtocolError

__all__ = [
    "Opcode",
    "Role",
    "State",
    "Frame",
    "CloseCode",
    "DATA_OPCODES",
    "CONTROL_OPCODES",
    "OPCODE_BY_VALUE",
    "MAX_CONTROL_PAYLOAD",
    "MAX_CLOSE_REASON",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_FRAGMENTS",
    "INFLATE_BUDGET",
    "RSV1",
    "RSV2",
    "RSV3",
    "is_sendable_close_code",
    "parse_close_payload",
    "Errors",
]


class Opcode(enum.IntEnum):
    """Frame opcodes defined by RFC 6455 section 5.2."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA

    @property
    def is_control(self) -> bool:
        """True for CLOSE, PING and PONG."""
        return self >= 0x8


DATA_OPCODES = frozenset({Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})

#: ``OPCODE_BY_VALUE[n]`` is the :class:`Opcode` for ``n`` or ``None`` when the
#: value is reserved. A tuple indexed by the 4-bit opcode field: a lookup here is
#: much cheaper than calling ``Opcode(n)`` for every frame.
OPCODE_BY_VALUE: Tuple[Optional[Opcode], ...] = tuple(
    Opcode(n) if n in Opcode._value2member_map_ else None for n in range(16)
)

#: Control frames carry at most 125 bytes (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125
#: The longest close reason, in bytes of UTF-8: a close frame's payload less its 2-byte code.
MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2

#: Default cap on one frame's payload, checked from the header before any of
#: the payload is buffered.
DEFAULT_MAX_FRAME_SIZE = 2**20

#: Default cap on one message's size (``max_size``), after inflation: a
#: larger message fails the connection with 1009.
DEFAULT_MAX_MESSAGE_SIZE = 2**20

#: What one :meth:`~wscodec.connection.Connection.receive_data` call inflates:
#: it stops after the compressed message that brings the messages it returned
#: to this many bytes, so they hold at most this plus one message (at most
#: ``max_size``), however many one read completed. The rest waits for the next
#: call (see ``Connection.pending_input``).
INFLATE_BUDGET = 2**20

#: Default cap on the frames of one fragmented message (``max_fragments``):
#: one more fails the connection with 1009. Fragments are joined as they
#: arrive, so they cost no memory beyond their payload; the cap stops a
#: message that never ends (empty continuation frames cost a peer 6 bytes
#: each). Autobahn's cases 9.3.1 and 9.4.1 send a 4 MiB message in 64-byte
#: frames, more than 65,536 of them (refused at that cap): twice that passes;
#: browsers send one frame per message.
DEFAULT_MAX_FRAGMENTS = 2**17

#: Bits of the first header byte reserved for extensions.
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10


class Frame(NamedTuple):
    """One WebSocket frame, with its payload already unmasked."""

    opcode: Opcode
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False


class CloseCode(enum.IntEnum):
    """Close codes of RFC 6455 section 7.4.1 and the IANA registry."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never on the wire
    ABNORMAL_CLOSURE = 1006  # never on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire


def is_sendable_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame on the wire.

    Allowed: 1000-1003, 1007-1014 (IANA registry) and 3000-4999 (registered
    and private use). Everything else, 1004-1006 and 1015 included, is not.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class Role(enum.Enum):
    """Which end of the connection: a server expects masked frames, a client sends them."""

    SERVER = "server"
    CLIENT = "client"


class State(enum.Enum):
    """Where a connection is in its life, once the opening handshake is over."""

    OPEN = "open"
    CLOSING = "closing"  # we sent a close frame (or failed) and wait for the peer
    CLOSED = "closed"  # the closing handshake is over, or the transport is gone


class Errors:
    """The text of every protocol error the codec raises, shared by both backends."""

    RESERVED_OPCODE = "reserved opcode {opcode:#x}"
    RESERVED_BITS = "reserved bits set without a negotiated extension: {bits:#04x}"
    FRAGMENTED_CONTROL = "fragmented control frame"
    CONTROL_TOO_LONG = "control frame payload of {length} bytes exceeds 125"
    UNMASKED = "incorrect masking: expected a masked frame"
    MASKED = "incorrect masking: expected an unmasked frame"
    LENGTH_MSB = "64-bit payload length with the most significant bit set"
    TOO_BIG = "frame payload of {length} bytes exceeds the limit of {limit} bytes"
    CLOSE_ONE_BYTE = "close frame with a 1-byte payload"
    CLOSE_BAD_CODE = "close code {code} is not allowed on the wire"
    CLOSE_BAD_REASON = "close reason is not valid UTF-8"
    # Rules above the frame: message assembly (wscodec.connection).
    EXPECTED_CONTINUATION = "expected a continuation frame, got a new data frame"
    UNEXPECTED_CONTINUATION = "continuation frame without a message to continue"
    INVALID_TEXT = "invalid UTF-8 in a text message"
    RSV1_ON_CONTINUATION = "RSV1 set on a continuation frame"
    MESSAGE_TOO_BIG = "message of more than {limit} bytes exceeds the limit"
    TOO_MANY_FRAGMENTS = "message in more than {limit} fragments exceeds the limit"
    # Errors in how the codec is called, rather than in what the peer sent.
    NOT_BYTES_LIKE = "a contiguous bytes-like object is required, not {type}"
    NOT_WRITABLE = "a writable contiguous bytes-like object is required, not {type}"
    BAD_MASK = "mask must contain 4 bytes"
    NEGATIVE_OFFSET = "offset must not be negative"
    BAD_OPCODE = "opcode {opcode!r} is not a valid opcode"
    ENCODE_FRAGMENTED_CONTROL = "control frames cannot be fragmented"
    ENCODE_CONTROL_TOO_LONG = "control frame payload of {length} bytes exceeds 125"
    BAD_LIMIT = "max_frame_size must be None or a non-negative int"
    BAD_RSV = "allowed_rsv must be a combination of RSV1, RSV2 and RSV3"
    # FrameParser and Utf8Validator serve one call at a time (RuntimeError).
    CONCURRENT_USE = (
        "{name} used from two threads at once, or re-entered from a callback:"
        " use one per thread, or a lock around it"
    )


def parse_close_payload(payload: bytes) -> Tuple[Optional[int], str]:
    """Check a close frame's payload and split it into ``(code, reason)``.

    An empty payload gives ``(None, "")``. Raises :class:`ProtocolError` (1002) for a
    1-byte payload or a code that may not be sent, and :class:`InvalidUtf8`
    (1007) when the reason is not valid UTF-8.
    """
    length = len(payload)
    if length == 0:
        return None, ""
    if length == 1:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, Errors.CLOSE_ONE_BYTE)
    code = (payload[0] << 8) | payload[1]
    if not is_sendable_close_code(code):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, Errors.CLOSE_BAD_CODE.format(code=code))
    try:
        # CPython's UTF-8 codec is strict RFC 3629: no surrogates, no overlong
        # forms, nothing above U+10FFFF.
        reason = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUtf8(Errors.CLOSE_BAD_REASON) from None
    return code, reason


def truncate_reason(reason: str) -> str:
    """Cut ``reason`` to what fits in a close frame, at a character boundary."""
    return reason.encode("utf-8")[:MAX_CLOSE_REASON].decode("utf-8", "ignore")
