"""The WebSocket connection as a sans-I/O state machine (after the handshake).

:class:`Connection` takes the bytes received and returns events; the bytes it
wants sent accumulate until :meth:`Connection.data_to_send` hands them over.
It never touches a socket, a thread or a clock, so every path through it is
testable with plain bytes::

    >>> from wscodec import Opcode, encode_frame
    >>> from wscodec.connection import Connection, Role, TextMessage
    >>> connection = Connection(Role.SERVER)
    >>> data = encode_frame(Opcode.TEXT, b"Hello", mask=b"abcd")  # what a client sent
    >>> for event in connection.receive_data(data):
    ...     if isinstance(event, TextMessage):
    ...         connection.send_text(event.data)  # an echo
    >>> connection.data_to_send()  # for the socket
    b'\\x81\\x05Hello'

It assembles messages from fragments (validating UTF-8 incrementally, so a
bad text message fails as soon as the bad fragment arrives), answers pings,
runs the closing handshake and turns every protocol violation into the close
frame RFC 6455 asks for, with the right code.
"""

from __future__ import annotations

import codecs
import os
import sys
from typing import Any, List, Optional, Tuple, Union

from . import _backend
from .codec import data_frame_header
from .deflate import PerMessageDeflate
from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidUtf8,
    PayloadTooBig,
    ProtocolError,
    detached,
)
from .protocol import (
    DEFAULT_MAX_FRAGMENTS,
    DEFAULT_MAX_MESSAGE_SIZE,
    INFLATE_BUDGET,
    MAX_CLOSE_REASON,
    RSV1,
    CloseCode,
    Errors,
    Frame,
    Opcode,
    Role,
    State,
    is_sendable_close_code,
    truncate_reason,
)
from .received import (
    BinaryMessage,
    CloseReceived,
    Event,
    Fragment,
    Ping,
    Pong,
    Received,
    TextMessage,
)

__all__ = [
    "BinaryMessage",
    "CloseReceived",
    "Connection",
    "Event",
    "Fragment",
    "Ping",
    "Pong",
    "Received",
    "Role",
    "State",
    "TextMessage",
]

BytesLike = Union[bytes, bytearray, memoryview]


# The members that per-message code compares against, bound once: on CPython
# 3.11 reading a member off its Enum class (``State.OPEN``) takes ~170 ns,
# longer than parsing a small frame; a module global takes a few (3.12: ~35 ns).
_SERVER, _CLIENT = Role.SERVER, Role.CLIENT
_OPEN, _CLOSING, _CLOSED = State.OPEN, State.CLOSING, State.CLOSED
_TEXT, _BINARY, _CONTINUATION = Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION
_PING, _PONG, _CLOSE = Opcode.PING, Opcode.PONG, Opcode.CLOSE


# For isinstance() on per-message paths: a module-level tuple is not rebuilt
# at each call, as a tuple written in the call is.
_MESSAGE_EVENTS = (TextMessage, BinaryMessage)
_BYTES_LIKE = (bytes, bytearray, memoryview)

_MASK_POOL = 1024  # masking keys drawn from os.urandom at a time
_PAST_THE_END = sys.maxsize  # a pending_payload() offset that returns no data
# From this size on, an unmasked payload that cannot change (bytes) is handed
# to the transport beside its header instead of copied behind it: copying a
# 1 MiB payload was a tenth of the servers' time echoing 1 MiB messages.
_SCATTER_MIN = 65536
# Fragments shorter than this are copied into one bytearray as they arrive;
# longer ones are kept as they are (a list entry costs about 1% of them), so
# a message in tiny fragments costs its payload, not 56 bytes per fragment.
_COALESCE_BELOW = 4096


class Connection:
    """One side of an open WebSocket connection, without I/O.

    :param role: :attr:`Role.SERVER` expects masked frames and sends unmasked
        ones; :attr:`Role.CLIENT` the reverse.
    :param max_message_size: largest message accepted, in bytes (1009 above);
        ``None`` for no limit. It also caps each frame, checked from its header.
    :param max_fragments: most frames one message may arrive in (1009 above);
        ``None`` for no limit.
    :param fragment_size: outgoing messages larger than this are sent as
        several frames; ``None`` sends every message in one frame.
    :param auto_pong: answer each ping with a pong carrying the same data.
    :param deflate: the permessage-deflate extension agreed in the handshake;
        it compresses outgoing messages and inflates incoming ones (RSV1).
    :param stream_fragments: hand over a message that arrives in several
        frames piece by piece, as :class:`Fragment` events, instead of whole
        (for an application that streams large messages). Its limits
        (``max_message_size``, ``max_fragments``) still apply to the whole.
    :param plain_messages: a whole message comes out of :meth:`receive_data`
        as its data alone, ``str`` for text and ``bytes`` for binary, instead
        of a :class:`TextMessage` or :class:`BinaryMessage`: for an I/O layer
        that hands the data straight to the application, which saves making
        an event object per message. Other events are unchanged. Also an
        attribute, which may be set before any data is received.
    """

    # Slots, not a __dict__: every open connection of every flavour holds one.
    __slots__ = (
        "__weakref__",
        "_codec",
        "_compressed",
        "_decoder",
        "_fragment_count",
        "_fragments",
        "_held",
        "_held_error",
        "_held_start",
        "_inflated",
        "_mask_position",
        "_masks",
        "_message_opcode",
        "_message_size",
        "_outgoing",
        "_parser",
        "_pending_close",
        "_scattered",
        "_sending",
        "_streaming",
        "_utf8",
        "_validated",
        "auto_pong",
        "close_received",
        "close_sent",
        "deflate",
        "eof_received",
        "failure",
        "fragment_size",
        "max_fragments",
        "max_message_size",
        "plain_messages",
        "role",
        "state",
        "stream_fragments",
    )

    def __init__(
        self,
        role: Role,
        *,
        max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
        fragment_size: Optional[int] = None,
        auto_pong: bool = True,
        deflate: Optional[PerMessageDeflate] = None,
        max_fragments: Optional[int] = DEFAULT_MAX_FRAGMENTS,
        stream_fragments: bool = False,
        plain_messages: bool = False,
    ) -> None:
        if fragment_size is not None and fragment_size < 1:
            raise ValueError("fragment_size must be None or a positive int")
        if max_fragments is not None and max_fragments < 1:
            raise ValueError("max_fragments must be None or a positive int")
        codec = _backend.codec
        self.role = role
        self.max_message_size = max_message_size
        self.max_fragments = max_fragments
        self._codec = codec
        self.fragment_size = fragment_size
        self.auto_pong = auto_pong
        self.deflate = deflate
        self.stream_fragments = stream_fragments
        self.plain_messages = plain_messages
        self._parser = self._make_parser()
        self._utf8 = codec.Utf8Validator()
        self._outgoing: List[BytesLike] = []
        self._scattered = False  # _outgoing holds a large payload apart from its header
        self._masks = b""
        self._mask_position = 0
        # The message being received.
        self._message_opcode: Optional[Opcode] = None
        self._compressed = False
        # Its payload so far: long fragments as they came, runs of short ones
        # joined in a bytearray (see _store()).
        self._fragments: List[Union[bytes, bytearray]] = []
        self._fragment_count = 0
        self._message_size = 0
        self._validated = 0  # bytes of the arriving frame already validated
        # With stream_fragments: whether the message arriving goes out in
        # pieces, and the decoder that carries a split character between them.
        self._streaming = False
        self._decoder: Optional[codecs.IncrementalDecoder] = None
        # With deflate: the bytes of messages inflated by this receive_data()
        # call, and the frames (and parser error) it held back for the next.
        self._inflated = 0
        # (Held frames stay in their list, from _held_start on: slicing it at
        # each call would cost quadratic time for many small messages.)
        self._held: Optional[List[Frame]] = None
        self._held_start = 0
        self._held_error: Optional[ProtocolError] = None
        # The fragmented message being sent, if any.
        self._sending: Optional[Opcode] = None

        self.state = _OPEN
        #: The peer's close frame, once received.
        self.close_received: Optional[CloseReceived] = None
        #: The code and reason of the close frame we sent, once sent.
        self.close_sent: Optional[Tuple[Optional[int], str]] = None
        #: The protocol error that failed the connection, if one did.
        self.failure: Optional[ProtocolError] = None
        self._pending_close: Optional[bytes] = None
        self.eof_received = False

    def enable_deflate(self, deflate: PerMessageDeflate) -> None:
        """Turn on permessage-deflate once the handshake agreed to it (before any data)."""
        if self._parser.buffered:
            raise RuntimeError("enable_deflate() after data was received")
        self.deflate = deflate
        self._parser = self._make_parser()

    def _make_parser(self) -> Any:
        limit = self.max_message_size
        if self.deflate is not None and limit is not None:
            # A compressed frame of incompressible data is a little larger than
            # the message; the message limit is enforced on the inflated size.
            limit += limit // 32 + 1024
        return self._codec.FrameParser(
            mask_expected=self.role is _SERVER,
            max_frame_size=limit,
            allowed_rsv=RSV1 if self.deflate is not None else 0,
        )

    # Receiving -----------------------------------------------------------------

    def receive_data(self, data: BytesLike) -> List[Received]:
        """Feed bytes from the peer; the events they complete, in order.

        With permessage-deflate, one call stops inflating once the messages
        it returns hold :data:`~wscodec.protocol.INFLATE_BUDGET` bytes (1 MiB;
        at most that plus one message): the frames after them are held back
        and :attr:`pending_input` is True. Hand the events to the application,
        then call ``receive_data(b"")`` for the next ones, and read no more
        from the transport while :attr:`pending_input` holds: what one read
        inflates stays bounded, and a peer that sends faster than the
        application handles messages waits in TCP, not in memory.
        """
        if self.close_received is not None or self.failure is not None or self.eof_received:
            return []  # nothing the peer sends after its close (or an error) counts
        if self._message_opcode is None and self.deflate is None and self._validated == 0:
            # The usual read: one small whole message, which the parser hands
            # over without a Frame when no rule is in question (else None).
            message = self._parser.whole_message(data)
            if message is not None:
                if self.plain_messages:
                    return [message]
                if type(message) is bytes:
                    return [BinaryMessage(message)]
                return [TextMessage(message)]  # type: ignore[arg-type]
        events: List[Received] = []
        error: Optional[ProtocolError] = None
        start = 0
        if self._held is None:  # the usual case: nothing held back by the last call
            try:
                frames = self._parser.feed(data)
            except ProtocolError as exc:
                frames, error = exc.frames, exc
        else:
            frames, start, error = self._take_held(data)
        if self.deflate is None:
            for frame in frames:
                try:
                    self._receive_frame(frame, events)
                except ProtocolError as exc:
                    error = exc
                    break
                if self.close_received is not None:
                    break
        else:
            error = self._receive_inflating(frames, start, error, events)
        if (
            error is None
            and self.close_received is None
            and self._held is None
            and self._parser.buffered
        ):
            error = self._check_partial_text()  # nothing buffered: no frame is arriving
        if error is not None:
            self.fail(error.code, error.reason, error)
        return events

    @property
    def pending_input(self) -> bool:
        """True while :meth:`receive_data` holds back frames it already received.

        Call ``receive_data(b"")`` for their events (before reading more from
        the transport). Only with permessage-deflate; see :meth:`receive_data`.
        """
        return self._held is not None

    def _take_held(self, data: BytesLike) -> Tuple[List[Frame], int, Optional[ProtocolError]]:
        """The frames held back by the last call (from the index returned), then
        those ``data`` completes, and the parser's error after them."""
        frames, start, error = self._held, self._held_start, self._held_error
        assert frames is not None
        self._held = self._held_error = None
        if error is None and len(data):  # after a parser error nothing more counts
            frames, start = frames[start:], 0  # the caller did not wait: rare
            try:
                frames += self._parser.feed(data)
            except ProtocolError as exc:
                frames += exc.frames
                error = exc
        return frames, start, error

    def _receive_inflating(
        self,
        frames: List[Frame],
        start: int,
        error: Optional[ProtocolError],
        events: List[Received],
    ) -> Optional[ProtocolError]:
        """:meth:`receive_data`'s loop with deflate on: it stops once the messages
        inflated reach the budget, and holds back the frames after them."""
        budget = INFLATE_BUDGET
        self._inflated = 0
        last = len(frames) - 1
        for index in range(start, last + 1):
            try:
                self._receive_frame(frames[index], events)
            except ProtocolError as exc:
                return exc  # the parser's error, if any, came after this frame
            if self.close_received is not None:
                break
            if self._inflated >= budget and index < last:
                self._held, self._held_start = frames, index + 1
                self._held_error = None if error is None else detached(error)
                return None
        return error

    def _check_partial_text(self) -> Optional[ProtocolError]:
        """Validate the part of a text frame received so far (fail fast within a frame)."""
        # First look at the frame without copying its payload (an offset past
        # the end gives no data): a large binary frame must cost nothing here.
        pending = self._parser.pending_payload(_PAST_THE_END)
        if pending is None:
            return None
        opcode, rsv1, _ = pending
        if rsv1:
            return None  # compressed: validated once inflated
        if opcode is _TEXT and self._message_opcode is None:
            if self._validated == 0:
                self._utf8.reset()  # this frame starts a new text message
        elif not (
            opcode is _CONTINUATION and self._message_opcode is _TEXT and not self._compressed
        ):
            return None
        data = self._parser.pending_payload(self._validated)[2]
        if not data:
            return None
        self._validated += len(data)
        if not self._utf8.feed(data):
            return InvalidUtf8(Errors.INVALID_TEXT)
        return None

    def receive_eof(self) -> List[Event]:
        """The peer closed the transport (TCP FIN or reset)."""
        self.eof_received = True
        self.state = _CLOSED
        self._held = self._held_error = None
        self._fragments = []
        return []

    def _receive_frame(self, frame: Frame, events: List[Received]) -> None:
        opcode, payload = frame.opcode, frame.payload
        # How much of this frame's payload the validator already saw, while
        # the frame was arriving (see _check_partial_text).
        validated, self._validated = self._validated, 0
        if opcode is _TEXT or opcode is _BINARY:
            if self._message_opcode is not None:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, Errors.EXPECTED_CONTINUATION)
            if frame.fin and not frame.rsv1 and not validated:  # the common case
                if opcode is _BINARY:
                    events.append(payload if self.plain_messages else BinaryMessage(payload))
                elif self._codec.validate_utf8(payload):
                    text = payload.decode("utf-8")
                    events.append(text if self.plain_messages else TextMessage(text))
                else:
                    raise InvalidUtf8(Errors.INVALID_TEXT)
                return
            self._message_opcode = opcode
            self._compressed = frame.rsv1  # only allowed by the parser with deflate on
            self._fragments = []
            self._fragment_count = 1
            self._message_size = 0
            if not validated:
                self._utf8.reset()
            if self._compressed:
                assert self.deflate is not None
                self.deflate.start_message()
            self._streaming = self.stream_fragments and not frame.fin
            self._add_fragment(payload, frame.fin, validated)
            if self._streaming:
                events.append(self._take_fragment(frame.fin))
            elif frame.fin:
                events.append(self._finish_message())
        elif opcode is _CONTINUATION:
            if self._message_opcode is None:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, Errors.UNEXPECTED_CONTINUATION)
            if frame.rsv1:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, Errors.RSV1_ON_CONTINUATION)
            count = self._fragment_count + 1
            limit = self.max_fragments
            if limit is not None and count > limit:
                raise PayloadTooBig(Errors.TOO_MANY_FRAGMENTS.format(limit=limit))
            self._fragment_count = count
            self._add_fragment(payload, frame.fin, validated)
            if self._streaming:
                events.append(self._take_fragment(frame.fin))
            elif frame.fin:
                events.append(self._finish_message())
        elif opcode is _PING:
            events.append(Ping(payload))
            if self.auto_pong and self.close_sent is None:
                self._send_frame(_PONG, payload)
        elif opcode is _PONG:
            events.append(Pong(payload))
        else:  # CLOSE; its payload was checked by the parser
            code, reason = self._close_payload(payload)
            self.close_received = CloseReceived(code, reason)
            events.append(self.close_received)
            if self.close_sent is None:
                # Echo the peer's code, as RFC 6455 section 5.5.1 suggests. The
                # reply goes out with the next data_to_send(); until then the
                # application may still finish answering what it received
                # (section 5.5.1 lets an endpoint delay its close for that).
                self._pending_close = self._encode_close(code, "")
                self.close_sent = (code, "")
            self.state = _CLOSED

    def _add_fragment(self, payload: bytes, final: bool, validated: int = 0) -> None:
        limit = self.max_message_size
        if self._compressed:
            assert self.deflate is not None
            room = None if limit is None else limit - self._message_size
            payload = self.deflate.inflate(payload, room, final)
        self._message_size += len(payload)
        if limit is not None and self._message_size > limit:
            raise PayloadTooBig(Errors.MESSAGE_TOO_BIG.format(limit=limit))
        if self._message_opcode is _TEXT:
            rest = memoryview(payload)[validated:] if validated else payload
            if not self._utf8.feed(rest):
                raise InvalidUtf8(Errors.INVALID_TEXT)
        if not payload:
            return  # an empty fragment costs nothing but its count
        fragments = self._fragments
        if len(payload) >= _COALESCE_BELOW:
            fragments.append(payload)
        elif fragments and type(fragments[-1]) is bytearray:
            fragments[-1] += payload  # type: ignore[operator]
        else:
            fragments.append(bytearray(payload))

    def _finish_message(self) -> Received:
        data = b"".join(self._fragments)
        opcode = self._message_opcode
        self._message_opcode = None
        self._fragments = []
        if self._compressed:
            self._inflated += len(data)
        if opcode is _BINARY:
            return data if self.plain_messages else BinaryMessage(data)
        if not self._utf8.finish():
            raise InvalidUtf8(Errors.INVALID_TEXT)
        text = data.decode("utf-8")
        return text if self.plain_messages else TextMessage(text)

    def _take_fragment(self, final: bool) -> Fragment:
        """The part of the streamed message received since the last piece."""
        data = b"".join(self._fragments)
        self._fragments = []
        if self._compressed:
            self._inflated += len(data)
        text = self._message_opcode is _TEXT
        if final:
            self._message_opcode = None
            self._streaming = False
        if not text:
            return Fragment(data, final)
        if final and not self._utf8.finish():
            raise InvalidUtf8(Errors.INVALID_TEXT)
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = codecs.getincrementaldecoder("utf-8")()
        # Validated already: decoding cannot fail, only wait for a split character.
        return Fragment(decoder.decode(data, final), final)

    @staticmethod
    def _close_payload(payload: bytes) -> Tuple[Optional[int], str]:
        if not payload:
            return None, ""
        return (payload[0] << 8) | payload[1], payload[2:].decode("utf-8")

    def fail(self, code: int, reason: str, error: Optional[ProtocolError] = None) -> None:
        """Fail the connection: send a close frame with ``code`` and stop reading.

        The close frame goes out with the next :meth:`data_to_send`. Until
        then the application may still answer the messages that arrived
        before the error (what strict peers such as Autobahn expect): they
        are sent first.
        """
        # Stored without its traceback: its frames reference this connection,
        # a cycle that would keep everything it holds until a full collection.
        self.failure = detached(error) if error is not None else ProtocolError(code, reason)
        self._held = self._held_error = None
        self._fragments = []
        if self.close_sent is None:
            reason = truncate_reason(reason)
            self._pending_close = self._encode_close(code, reason)
            self.close_sent = (code, reason)
        if self.state is _OPEN:
            self.state = _CLOSING

    # Sending -------------------------------------------------------------------

    def send_text(self, data: str, *, fin: bool = True) -> None:
        """Send a text message (or its first fragment, with ``fin=False``)."""
        self._send_data(_TEXT, data.encode("utf-8"), fin)

    def send_binary(self, data: BytesLike, *, fin: bool = True) -> None:
        """Send a binary message (or its first fragment, with ``fin=False``)."""
        self._send_data(_BINARY, data, fin)

    def send_continuation(self, data: Union[str, BytesLike], *, fin: bool) -> None:
        """Send the next fragment of the message begun with ``fin=False``."""
        if self._sending is None:
            raise RuntimeError("no fragmented message is being sent")
        if isinstance(data, str) != (self._sending is _TEXT):
            raise TypeError("fragments of a message must all be str (text) or all bytes")
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self._send_data(_CONTINUATION, payload, fin)

    def send_ping(self, data: BytesLike = b"") -> None:
        self._check_open()
        self._send_frame(_PING, data)

    def send_pong(self, data: BytesLike = b"") -> None:
        self._check_open()
        self._send_frame(_PONG, data)

    def send_close(self, code: Optional[int] = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start (or complete) the closing handshake.

        ``code`` must be one that may be sent on the wire; ``None`` sends a
        close frame without a code (and then ``reason`` must be empty).
        """
        if code is None:
            if reason:
                raise ValueError("a close reason needs a close code")
        elif not is_sendable_close_code(code):
            raise ValueError(f"close code {code} may not be sent on the wire")
        if len(reason.encode("utf-8")) > MAX_CLOSE_REASON:
            raise ValueError(f"close reason longer than {MAX_CLOSE_REASON} bytes")
        if self.close_sent is not None:
            return
        self._send_close_frame(code, reason)
        if self.state is _OPEN:
            self.state = _CLOSING

    def message_frame(self, data: Union[str, BytesLike]) -> Optional[bytes]:
        """A whole message's frame, for the caller to write at once; or None.

        The shortcut of an I/O layer that writes each message as it is sent:
        when nothing waits to be sent and ``data`` (``str`` for text) goes
        out in one small uncompressed frame, this returns that frame, and the
        caller writes it itself (it is not queued for :meth:`data_to_send`).
        None otherwise: then send it with :meth:`send_text` or
        :meth:`send_binary`, which apply every rule and raise what they raise.
        """
        if (
            self._outgoing
            or self._pending_close is not None
            or self._sending is not None
            or self.close_sent is not None
            or self.state is not _OPEN
            or self.deflate is not None
            or self.fragment_size is not None
            or len(data) >= _SCATTER_MIN  # large: sent beside its header, without a copy
        ):
            return None
        payload: BytesLike
        if isinstance(data, str):
            opcode, payload = _TEXT, data.encode("utf-8")
        else:
            opcode, payload = _BINARY, data
        mask = self._next_mask() if self.role is _CLIENT else None
        frame: bytes = self._codec.encode_frame(opcode, payload, mask=mask)
        return frame

    def data_to_send(self) -> bytes:
        """The bytes to write to the transport, in order; empties the buffer."""
        buffers = self.buffers_to_send()
        if len(buffers) == 1:
            return bytes(buffers[0])
        return b"".join(buffers)

    def buffers_to_send(self) -> List[BytesLike]:
        """What :meth:`data_to_send` returns, as buffers for a vectored write.

        A large payload that cannot change (``bytes``) comes as a buffer of
        its own, after its header, so that ``socket.sendmsg()`` writes it
        without a copy; smaller frames are joined. Empty when nothing waits;
        empties the buffer.
        """
        if self._pending_close is not None:
            self._outgoing.append(self._pending_close)
            self._pending_close = None
        outgoing = self._outgoing
        if not outgoing:
            return []
        self._outgoing = []
        if len(outgoing) == 1:
            return outgoing
        if not self._scattered:
            return [b"".join(outgoing)]
        self._scattered = False
        buffers: List[BytesLike] = []
        run: List[BytesLike] = []  # consecutive small pieces, joined into one buffer
        for piece in outgoing:
            if len(piece) < _SCATTER_MIN:
                run.append(piece)
                continue
            if run:
                buffers.append(run[0] if len(run) == 1 else b"".join(run))
                run = []
            buffers.append(piece)
        if run:
            buffers.append(run[0] if len(run) == 1 else b"".join(run))
        return buffers

    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` would return anything (without emptying it)."""
        return bool(self._outgoing) or self._pending_close is not None

    @property
    def close_pending(self) -> bool:
        """True while a close frame we owe (after a failure or the peer's close) waits.

        It is handed out, after anything sent meanwhile, by :meth:`data_to_send`.
        """
        return self._pending_close is not None

    # Closing state ---------------------------------------------------------------

    @property
    def close_code(self) -> Optional[int]:
        """The code the peer closed with: 1005 if its close had none, 1006 if it sent none."""
        if self.close_received is not None:
            code = self.close_received.code
            return CloseCode.NO_STATUS_RCVD if code is None else code
        if self.state is _CLOSED:
            return CloseCode.ABNORMAL_CLOSURE
        return None

    @property
    def close_reason(self) -> str:
        return self.close_received.reason if self.close_received is not None else ""

    def close_exception(self) -> ConnectionClosed:
        """The :class:`ConnectionClosed` that describes how this connection ended."""
        code = self.close_code
        if code is None:
            code = CloseCode.ABNORMAL_CLOSURE
        sent = self.close_sent
        sent_pair = None if sent is None else (sent[0] or CloseCode.NO_STATUS_RCVD, sent[1])
        clean = code in (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY)
        if clean and (sent is None or sent[0] in (None, 1000, 1001)) and self.failure is None:
            return ConnectionClosedOK(code, self.close_reason, sent_pair)
        return ConnectionClosedError(code, self.close_reason, sent_pair)

    # Internals -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._pending_close is not None:
            return  # our close frame is decided but has not gone out yet
        if self.state is not _OPEN or self.close_sent is not None:
            raise self.close_exception()

    def _send_data(self, opcode: Opcode, payload: BytesLike, fin: bool) -> None:
        if (
            fin
            and self._sending is None
            and self.close_sent is None
            and self.state is _OPEN
            and self.deflate is None
            and self.fragment_size is None
        ):
            # The common case: a whole message in one frame, most often a
            # small one, encoded here (one call less than _send_frame()).
            if len(payload) < _SCATTER_MIN:
                mask = self._next_mask() if self.role is _CLIENT else None
                self._outgoing.append(self._codec.encode_frame(opcode, payload, mask=mask))
            else:
                self._send_frame(opcode, payload)
            return
        self._check_open()
        message_opcode: Optional[Opcode]
        if opcode is not _CONTINUATION:
            if self._sending is not None:
                raise RuntimeError("finish the fragmented message before sending another")
            message_opcode = opcode
        else:
            message_opcode = self._sending
        rsv1 = False
        deflate = self.deflate
        if (
            deflate is not None
            and fin
            and opcode is not _CONTINUATION
            and len(payload) >= deflate.min_size
        ):
            # Whole messages only: a message sent in pieces by the caller goes
            # uncompressed (RFC 7692 lets each message choose).
            payload = deflate.compress(payload)
            rsv1 = True
        size = self.fragment_size
        view = memoryview(payload)
        if size is not None and view.nbytes > size:
            # Split into frames of at most fragment_size bytes.
            last = (view.nbytes - 1) // size * size
            for start in range(0, last, size):
                self._send_frame(opcode, view[start : start + size], fin=False, rsv1=rsv1)
                opcode = _CONTINUATION
                rsv1 = False
            view = view[last:]
        self._send_frame(opcode, view, fin=fin, rsv1=rsv1)
        self._sending = None if fin else message_opcode

    def _send_frame(
        self, opcode: Opcode, payload: BytesLike, *, fin: bool = True, rsv1: bool = False
    ) -> None:
        size = -1
        if len(payload) >= _SCATTER_MIN and self.role is _SERVER:
            size = _frozen_size(payload)
        if size >= _SCATTER_MIN:
            self._outgoing.append(data_frame_header(opcode, size, fin=fin, rsv1=rsv1))
            self._outgoing.append(payload)
            self._scattered = True
            return
        mask = self._next_mask() if self.role is _CLIENT else None
        self._outgoing.append(
            self._codec.encode_frame(opcode, payload, fin=fin, mask=mask, rsv1=rsv1)
        )

    def _send_close_frame(self, code: Optional[int], reason: str) -> None:
        self._outgoing.append(self._encode_close(code, reason))
        self.close_sent = (code, reason)

    def _encode_close(self, code: Optional[int], reason: str) -> bytes:
        payload = b"" if code is None else code.to_bytes(2, "big") + reason.encode("utf-8")
        mask = self._next_mask() if self.role is _CLIENT else None
        frame: bytes = self._codec.encode_frame(_CLOSE, payload, mask=mask)
        return frame

    def _next_mask(self) -> bytes:
        position = self._mask_position
        if position >= len(self._masks):
            self._masks = os.urandom(4 * _MASK_POOL)
            position = 0
        self._mask_position = position + 4
        return self._masks[position : position + 4]


def _frozen_size(payload: BytesLike) -> int:
    """The payload's size if its bytes cannot change before they are written, else -1."""
    if type(payload) is bytes:
        return len(payload)
    if (
        type(payload) is memoryview
        and type(payload.obj) is bytes
        and payload.c_contiguous
        and payload.format in ("B", "b", "c")
    ):
        return payload.nbytes
    return -1


#: The pure-Python class, whichever backend is active (the twins' tests compare them).
PythonConnection = Connection
if __name__ == "wscodec.connection":
    # With the compiled backend: this module's own source, built as an
    # extension type (setup.py; its attributes are typed in
    # src/wscodec/_connection_c.pxd).
    _compiled = _backend.compiled_twin("wscodec._connection_c")
    if _compiled is not None:
        # Through globals(): in the compiled build the name is an extension
        # type, which Cython will not let the module rebind.
        globals()["Connection"] = _compiled.Connection
