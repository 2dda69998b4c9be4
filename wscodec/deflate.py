"""permessage-deflate (RFC 7692): negotiation and per-message (de)compression.

Negotiation is a pure function of header values; :class:`PerMessageDeflate`
holds the two zlib streams of one connection. Both codec backends share this
module (zlib does the work), so compression behaves the same on both.

Memory per connection with the defaults: our compressor uses a 4 KiB window
(``server_max_window_bits=12``) and ``memLevel=5`` (16 KiB of hash tables),
about 40 KiB with zlib's own state; the decompressor needs a window of the
size the peer uses, at most 32 KiB (15 bits), about 40 KiB with its state.
So roughly 80 KiB in all, and no more than that however large the messages:
inflated output is produced in bounded steps and capped by ``max_size``.
A direction without context takeover holds no zlib stream between messages.

A server's default (:data:`SERVER_DEFAULT`, what ``compression="deflate"``
means there) agrees ``server_no_context_takeover``: each message it sends is
compressed on its own, so an idle connection holds no compressor, only the
decompressor the client's context needs (about 11 KiB when the client lets us
bound its window to 12 bits). Messages that repeat each other compress less
well; ``compression=DeflateOptions()`` keeps the context, for about 38 KiB more
per connection. A client's default (:data:`CLIENT_DEFAULT`) keeps both.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

from .exceptions import InvalidResponse, PayloadTooBig, ProtocolError
from .protocol import CloseCode

__all__ = [
    "EXTENSION_NAME",
    "CLIENT_DEFAULT",
    "DeflateOptions",
    "PerMessageDeflate",
    "SERVER_DEFAULT",
    "accept_offers",
    "client_offer",
    "parse_extensions",
    "accept_response",
    "resolve",
]

EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with; RFC 7692 strips it
_INFLATE_STEP = 65536  # bytes inflated per step: bounds memory while a bomb is detected
_DEFAULT_BITS = 12  # the window of the side we control, unless told otherwise

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*(?:=\s*({_TOKEN}|"[^"]*"))?\s*')

Params = List[Tuple[str, Optional[str]]]
Compression = Union[str, "DeflateOptions", None]


class _Decline(Exception):
    """An offer or response we cannot accept as it is."""


def parse_extensions(values: List[str]) -> List[Tuple[str, Params]]:
    """Parse ``Sec-WebSocket-Extensions`` header values into (name, params) pairs.

    Raises :class:`ValueError` on a syntax error.
    """
    result: List[Tuple[str, Params]] = []
    for value in values:
        for item in _split_outside_quotes(value, ","):
            if not item.strip():
                continue
            name, *raw_params = _split_outside_quotes(item, ";")
            name = name.strip()
            if not re.fullmatch(_TOKEN, name):
                raise ValueError(f"invalid extension name {name!r}")
            params: Params = []
            for raw in raw_params:
                match = _PARAM.fullmatch(raw)
                if match is None:
                    raise ValueError(f"invalid extension parameter {raw!r}")
                key, param_value = match.groups()
                if param_value is not None and param_value.startswith('"'):
                    param_value = param_value[1:-1]
                    if not re.fullmatch(_TOKEN, param_value):  # RFC 6455 9.1
                        raise ValueError(f"invalid quoted value {param_value!r}")
                params.append((key.lower(), param_value))
            result.append((name.lower(), params))
    return result


def _split_outside_quotes(text: str, separator: str) -> List[str]:
    parts: List[str] = []
    current: List[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class DeflateOptions:
    """What this endpoint asks for and accepts; defaults bound memory (see the module doc).

    ``server_max_window_bits`` (8-15): on a server, the window we compress
    with (smaller if the client asks); on a client, the largest window we ask
    the server to use (``None``: we do not ask). ``client_max_window_bits``:
    on a server, the window we ask the client to use when it lets us; on a
    client, the largest window we compress with (smaller if the server asks).
    ``None`` means 12 for the side we control. ``level`` and ``mem_level``
    tune our compressor; ``min_size`` leaves shorter messages uncompressed.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: Optional[int] = None
    client_max_window_bits: Optional[int] = None
    level: int = 6
    mem_level: int = 5
    min_size: int = 0

    def __post_init__(self) -> None:
        for bits in (self.server_max_window_bits, self.client_max_window_bits):
            if bits is not None and not 8 <= bits <= 15:
                raise ValueError("max_window_bits must be between 8 and 15")
        if not 1 <= self.mem_level <= 9:
            raise ValueError("mem_level must be between 1 and 9")


class PerMessageDeflate:
    """The negotiated extension on one connection: compresses and inflates messages.

    ``local_*`` settings apply to what we send, ``remote_*`` to what we receive.
    """

    def __init__(
        self,
        *,
        local_no_context_takeover: bool,
        remote_no_context_takeover: bool,
        local_max_window_bits: int,
        remote_max_window_bits: int,
        level: int = 6,
        mem_level: int = 5,
        min_size: int = 0,
    ) -> None:
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.remote_max_window_bits = remote_max_window_bits
        self.level = level
        self.mem_level = mem_level
        self.min_size = min_size
        self._compressor: Optional[zlib._Compress] = None
        self._decompressor: Optional[zlib._Decompress] = None

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_max_window_bits={self.local_max_window_bits}, "
            f"remote_max_window_bits={self.remote_max_window_bits})"
        )

    # Sending -------------------------------------------------------------------------

    def compress(self, data: Union[bytes, bytearray, memoryview]) -> bytes:
        """One whole message, compressed as RFC 7692 section 7.2.1 describes."""
        compressor = self._compressor
        if compressor is None:
            # zlib cannot compress with an 8-bit window; a 9-bit one never
            # references more than 250 bytes back, which an 8-bit window covers.
            bits = max(self.local_max_window_bits, 9)
            compressor = zlib.compressobj(self.level, zlib.DEFLATED, -bits, self.mem_level)
            if not self.local_no_context_takeover:
                # Kept for the next message's context; without context
                # takeover an idle connection holds no compressor at all.
                self._compressor = compressor
        compressed = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if compressed.endswith(_TAIL):
            compressed = compressed[:-4]
        return compressed

    # Receiving -------------------------------------------------------------------------

    def start_message(self) -> None:
        # A peer may end a message with a block that has BFINAL set (RFC 7692
        # section 7.2.3.4); its deflate stream is then over and the next
        # message starts a new one: an ended decompressor would silently turn
        # every later message into b"".
        decompressor = self._decompressor
        if decompressor is None or self.remote_no_context_takeover or decompressor.eof:
            self._decompressor = zlib.decompressobj(-self.remote_max_window_bits)

    def inflate(self, data: bytes, room: Optional[int], final: bool) -> bytes:
        """Inflate the next fragment of a compressed message.

        ``room`` is how many more bytes the message may grow by (``None``: no
        limit). Output is produced in bounded steps, so a message that
        inflates past the limit raises :class:`PayloadTooBig` (1009) before
        the memory is spent. Corrupt data raises :class:`ProtocolError` (1007).
        """
        decompressor = self._decompressor
        assert decompressor is not None, "start_message() first"
        if final:
            data += _TAIL
        pieces = []
        produced = 0
        pending = data
        try:
            while True:
                step = _INFLATE_STEP if room is None else min(_INFLATE_STEP, room - produced + 1)
                piece = decompressor.decompress(pending, max(step, 1))
                produced += len(piece)
                if room is not None and produced > room:
                    raise PayloadTooBig("message exceeds the size limit once inflated")
                pieces.append(piece)
                pending = decompressor.unconsumed_tail
                if not pending and len(piece) < step:
                    break
        except zlib.error as error:
            raise ProtocolError(
                CloseCode.INVALID_DATA, f"invalid compressed data: {error}"
            ) from None
        if final and self.remote_no_context_takeover:
            self._decompressor = None  # the next message starts afresh: hold nothing meanwhile
        return b"".join(pieces)


# Negotiation ---------------------------------------------------------------------------


def _bits(value: Optional[str], allow_missing: bool) -> Optional[int]:
    if value is None:
        if allow_missing:
            return None
        raise _Decline("window bits without a value")
    if not value.isdigit() or not 8 <= int(value) <= 15 or value != str(int(value)):
        raise _Decline(f"invalid window bits {value!r}")
    return int(value)


def _params_dict(params: Params) -> Dict[str, Optional[str]]:
    result: Dict[str, Optional[str]] = {}
    for key, value in params:
        if key in result:
            raise _Decline(f"duplicate parameter {key}")
        if key not in (
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ):
            raise _Decline(f"unknown parameter {key}")
        if key.endswith("no_context_takeover") and value is not None:
            raise _Decline(f"{key} takes no value")
        result[key] = value
    return result


def accept_offers(
    header_values: List[str], options: DeflateOptions
) -> Optional[Tuple[str, PerMessageDeflate]]:
    """(Server) Pick the first acceptable permessage-deflate offer.

    Returns the response header value and the extension, or ``None`` to go on
    without compression (no offer, or none we can accept). A malformed header
    raises :class:`ValueError` (the server answers 400).
    """
    for name, params in parse_extensions(header_values):
        if name != EXTENSION_NAME:
            continue
        try:
            offer = _params_dict(params)
            server_bits_offered = (
                _bits(offer["server_max_window_bits"], False)
                if "server_max_window_bits" in offer
                else None
            )
            client_bits_offered = (
                _bits(offer["client_max_window_bits"], True)
                if "client_max_window_bits" in offer
                else None
            )
        except _Decline:
            continue  # try the next offer
        response: List[str] = [EXTENSION_NAME]
        server_nct = options.server_no_context_takeover or "server_no_context_takeover" in offer
        client_nct = options.client_no_context_takeover or "client_no_context_takeover" in offer
        if server_nct:
            response.append("server_no_context_takeover")
        if client_nct:
            response.append("client_no_context_takeover")
        server_bits = options.server_max_window_bits or _DEFAULT_BITS
        if server_bits_offered is not None:
            server_bits = min(server_bits, server_bits_offered)
        if server_bits != 15 or server_bits_offered is not None:
            response.append(f"server_max_window_bits={server_bits}")
        client_bits = 15
        if "client_max_window_bits" in offer:
            # The client lets us bound its window: ask for ours (or its, if smaller).
            client_bits = min(
                options.client_max_window_bits or _DEFAULT_BITS, client_bits_offered or 15
            )
            response.append(f"client_max_window_bits={client_bits}")
        extension = PerMessageDeflate(
            local_no_context_takeover=server_nct,
            remote_no_context_takeover=client_nct,
            local_max_window_bits=server_bits,
            remote_max_window_bits=client_bits,
            level=options.level,
            mem_level=options.mem_level,
            min_size=options.min_size,
        )
        return "; ".join(response), extension
    return None


def client_offer(options: DeflateOptions) -> str:
    """(Client) The ``Sec-WebSocket-Extensions`` value offering permessage-deflate."""
    offer = [EXTENSION_NAME]
    if options.server_no_context_takeover:
        offer.append("server_no_context_takeover")
    if options.client_no_context_takeover:
        offer.append("client_no_context_takeover")
    if options.server_max_window_bits is not None:
        offer.append(f"server_max_window_bits={options.server_max_window_bits}")
    # Valueless: the server may bound our window to anything; we compress
    # with the smaller of its bound and ours, so any answer is acceptable.
    offer.append("client_max_window_bits")
    return "; ".join(offer)


def accept_response(
    header_values: List[str], options: DeflateOptions
) -> Optional[PerMessageDeflate]:
    """(Client) Check the server's answer to :func:`client_offer`.

    ``None`` when the server declined. Raises :class:`InvalidResponse` when it
    answered with something we did not offer or cannot honour.
    """
    try:
        extensions = parse_extensions(header_values)
    except ValueError as error:
        raise InvalidResponse(f"invalid Sec-WebSocket-Extensions: {error}") from None
    if not extensions:
        return None
    if len(extensions) > 1 or extensions[0][0] != EXTENSION_NAME:
        raise InvalidResponse(f"the server accepted extensions we did not offer: {extensions}")
    try:
        params = _params_dict(extensions[0][1])
        server_bits = _bits(params.get("server_max_window_bits", "15"), False)
        client_bits = _bits(params.get("client_max_window_bits", "15"), False)
    except _Decline as error:
        raise InvalidResponse(f"unacceptable permessage-deflate response: {error}") from None
    assert server_bits is not None and client_bits is not None
    if options.server_no_context_takeover and "server_no_context_takeover" not in params:
        raise InvalidResponse("the server ignored server_no_context_takeover")
    if options.server_max_window_bits is not None and server_bits > options.server_max_window_bits:
        raise InvalidResponse("the server's window is larger than we asked for")
    return PerMessageDeflate(
        local_no_context_takeover=options.client_no_context_takeover
        or "client_no_context_takeover" in params,
        remote_no_context_takeover="server_no_context_takeover" in params,
        local_max_window_bits=min(client_bits, options.client_max_window_bits or _DEFAULT_BITS),
        remote_max_window_bits=server_bits,
        level=options.level,
        mem_level=options.mem_level,
        min_size=options.min_size,
    )


#: What ``compression="deflate"`` means on a server: no context takeover for
#: what it sends, so that an idle connection holds no compressor (see the module doc).
SERVER_DEFAULT = DeflateOptions(server_no_context_takeover=True)
#: What ``compression="deflate"`` means on a client: the context kept both ways.
CLIENT_DEFAULT = DeflateOptions()


def resolve(compression: Compression, *, server: bool = False) -> Optional[DeflateOptions]:
    """The options for a ``compression`` argument: "deflate", options, or None.

    "deflate" is :data:`SERVER_DEFAULT` for a server (``server=True``) and
    :data:`CLIENT_DEFAULT` for a client.
    """
    if compression is None:
        return None
    if compression == "deflate":
        return SERVER_DEFAULT if server else CLIENT_DEFAULT
    if isinstance(compression, DeflateOptions):
        return compression
    raise ValueError(f"compression must be 'deflate', DeflateOptions(...) or None: {compression!r}")
