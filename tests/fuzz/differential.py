"""The checks behind the fuzz targets, shared with the regression test.

Each ``check_<target>(data)`` takes one input of arbitrary bytes, decodes from
it the options and the chunking to use (so the fuzzer explores those too) and
raises ``AssertionError`` on a finding:

- ``frames``: both codec twins parse the same stream in the same chunks and
  must give the same frames, ``buffered`` counts and errors (type, close code,
  reason and ``.frames``); feeding it whole must give the same frames as
  feeding it in chunks; every frame parsed must re-encode to the same bytes on
  both twins and parse back to itself; masking agrees on both twins.
  ``FrameParser.whole_message`` is asked first on each chunk: both twins give
  the same answer, and a message only where ``feed`` then gives exactly that
  one final data frame.
- ``utf8``: both twins (one-shot and incremental, same chunks) agree with each
  other and with CPython's strict decoder.
- ``handshake``: the bounded HTTP reader and ``accept``/``check_response``
  (pure Python, no twin) raise only their documented exceptions, do not
  depend on the chunking, keep their limits, and a parsed head serialises and
  parses back to itself.
- ``inflate``: ``PerMessageDeflate.inflate`` (pure Python, no twin) raises only
  ``ProtocolError``/``PayloadTooBig``, never produces more than ``room`` bytes,
  does not depend on how a message is fragmented, and agrees with a plain
  zlib decompressor, never ignoring compressed bytes.

Nothing here needs atheris: ``tests/test_fuzz_regressions.py`` replays the
corpus and the regressions through the same functions on every install.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from wscodec import _backend, deflate, handshake  # noqa: E402
from wscodec.exceptions import (  # noqa: E402
    InvalidRequest,
    InvalidResponse,
    InvalidStatus,
    ProtocolError,
)

CORPUS = HERE / "corpus"
REGRESSIONS = HERE / "regressions"


def twins() -> Tuple[Any, Any]:
    """(compiled, python); the compiled one must have been built."""
    if _backend.compiled_codec is None:
        raise RuntimeError(f"the compiled codec is absent: {_backend.EXTENSION_ERROR}")
    return _backend.compiled_codec, _backend.python_codec


class Input:
    """Reads options from the front of a fuzz input; zeros once it runs out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, count: int) -> bytes:
        piece = self.data[self.pos : self.pos + count]
        self.pos += len(piece)
        return piece

    def rest(self) -> bytes:
        piece = self.data[self.pos :]
        self.pos = len(self.data)
        return piece

    def sizes(self) -> List[int]:
        """Up to 7 chunk sizes (a 0 means an empty feed)."""
        return [self.byte() for _ in range(self.byte() % 8)]


def chunked(data: bytes, sizes: List[int]) -> List[bytes]:
    """``data`` cut by cycling through ``sizes``; whole when none is positive."""
    if not any(sizes):
        return [data]
    chunks, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        chunks.append(data[pos : pos + size])
        pos += size
        i += 1
    return chunks or [b""]


def outcome(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Tuple[Any, ...]:
    """A call's result, or its exception reduced to what both twins must share."""
    try:
        return ("ok", call(*args, **kwargs))
    except ProtocolError as error:
        return ("protocol-error", type(error), error.code, error.reason, list(error.frames))
    except Exception as error:
        return ("error", type(error), str(error))


# Frames ------------------------------------------------------------------------------

LIMITS = [None, 0, 1, 10, 125, 126, 1000, 65535, 65536, 2**20, 2**63 - 1, 2**64]


def frame_options(source: Input) -> Dict[str, Any]:
    flags = source.byte()
    return {
        "mask_expected": bool(flags & 1),
        "max_frame_size": LIMITS[(flags >> 1) % len(LIMITS)],
        "allowed_rsv": ((flags >> 5) & 7) << 4,
    }


def feed_all(twin: Any, options: Dict[str, Any], chunks: List[bytes], kind: int) -> List[Any]:
    """What one twin says after each chunk: frames or the error, and ``buffered``."""
    parser = twin.FrameParser(**options)
    wrap = (bytes, bytearray, memoryview)[kind % 3]
    history: List[Any] = []
    for chunk in chunks:
        # The shortcut first: whatever it answers, feed() must see the chunk untouched.
        whole = outcome(parser.whole_message, wrap(chunk))
        result = outcome(parser.feed, wrap(chunk))
        history.append((result, parser.buffered, whole))
        if result[0] != "ok":
            # A failed parser stays failed: the same error, no frames.
            history.append((outcome(parser.feed, b"\x81\x00"), parser.buffered, None))
            break
    return history


def delivered(history: List[Any]) -> Tuple[List[Any], Optional[Tuple[Any, ...]]]:
    frames: List[Any] = []
    for result, _buffered, _whole in history:
        if result[0] == "ok":
            frames.extend(result[1])
        else:
            frames.extend(result[4] if result[0] == "protocol-error" else [])
            return frames, result[:4]
    return frames, None


def check_frames(data: bytes) -> None:
    compiled, python = twins()
    source = Input(data)
    options = frame_options(source)
    kind = source.byte()
    sizes = source.sizes()
    stream = source.rest()
    chunks = chunked(stream, sizes)

    history = feed_all(compiled, options, chunks, kind)
    assert history == feed_all(python, options, chunks, kind), "the twins disagree"
    for result, _buffered, whole in history:
        if whole is not None and whole[0] == "ok" and whole[1] is not None:
            assert result[0] == "ok" and len(result[1]) == 1, "whole_message took a non-message"
            frame = result[1][0]
            payload = frame.payload.decode() if isinstance(whole[1], str) else frame.payload
            assert frame.fin and frame.opcode in (1, 2) and whole[1] == payload, "whole_message"
    frames, error = delivered(history)
    whole = delivered(feed_all(compiled, options, [stream], 0))
    assert whole == (frames, error), "chunking changed the frames or the error"
    if error is None:
        whole_buffered = feed_all(compiled, options, [stream], 0)[-1][1]
        assert history[-1][1] == whole_buffered, "chunking changed buffered"

    key = (stream[:4] + b"\x00\x01\x02\x03")[:4]
    offset = kind & 7
    for frame in frames[:8]:
        mask = key if options["mask_expected"] else None
        encoded = [
            outcome(
                twin.encode_frame,
                frame.opcode,
                frame.payload,
                fin=frame.fin,
                mask=mask,
                rsv1=frame.rsv1,
                rsv2=frame.rsv2,
                rsv3=frame.rsv3,
            )
            for twin in (compiled, python)
        ]
        assert encoded[0] == encoded[1], "the encoders disagree"
        assert encoded[0][0] == "ok", f"a parsed frame does not encode: {encoded[0]}"
        for twin in (compiled, python):
            again = twin.FrameParser(**{**options, "max_frame_size": None}).feed(encoded[0][1])
            assert again == [frame], "a frame does not survive encode + parse"

    masked = [twin.apply_mask(stream, key) for twin in (compiled, python)]
    assert masked[0] == masked[1], "apply_mask disagrees"
    buffers = [bytearray(stream) for _ in range(2)]
    for twin, buffer in zip((compiled, python), buffers):
        twin.apply_mask_into(buffer, key, offset)
    assert buffers[0] == buffers[1], "apply_mask_into disagrees"
    rotated = key[offset % 4 :] + key[: offset % 4]
    assert compiled.apply_mask(bytes(buffers[0]), rotated) == stream, "masking is not an involution"


# UTF-8 -------------------------------------------------------------------------------


def check_utf8(data: bytes) -> None:
    compiled, python = twins()
    source = Input(data)
    sizes = source.sizes()
    text = source.rest()
    try:
        text.decode("utf-8")
        expected = True
    except UnicodeDecodeError:
        expected = False
    for twin in (compiled, python):
        assert twin.validate_utf8(text) is expected, f"{twin.__name__}.validate_utf8 is wrong"
        assert twin.validate_utf8(memoryview(text)[1:]) is valid(text[1:])
    validators = [twin.Utf8Validator() for twin in (compiled, python)]
    seen = b""
    for chunk in chunked(text, sizes):
        seen += chunk
        verdicts = [validator.feed(chunk) for validator in validators]
        assert verdicts[0] == verdicts[1], f"feed disagrees after {len(seen)} bytes"
        assert verdicts[0] == can_continue(seen), "feed is not fail-fast (or fails too early)"
    finishes = [validator.finish() for validator in validators]
    assert finishes == [expected, expected], f"finish disagrees: {finishes}"
    # finish() resets: the validators are as new.
    assert [validator.feed(b"ok") for validator in validators] == [True, True]


def valid(text: bytes) -> bool:
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def can_continue(prefix: bytes) -> bool:
    """Whether some bytes appended to ``prefix`` make valid UTF-8 (brute force on the tail).

    CPython's strict decoder reports the first bad sequence; one that starts
    more than 3 bytes before the end is complete, so nothing appended helps.
    """
    try:
        prefix.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(prefix) - 3:
            return False
        last = prefix[error.start :]
        return any(valid(last + tail) for tail in COMPLETIONS)
    return True


# Every continuation of 1 to 3 bytes a truncated sequence might need: for each
# lead byte, the bytes that may follow it, then plain continuation bytes.
COMPLETIONS = [
    bytes([second]) + b"\x80" * extra for second in range(0x80, 0xC0) for extra in range(3)
]


# Handshake ---------------------------------------------------------------------------

HEAD_LIMITS = [(8192, 128, 65536), (64, 4, 256), (16, 2, 64), (200, 20, 1000), (1, 1, 1)]


def read_head(kind: str, limits: Tuple[int, int, int], chunks: List[bytes]) -> Tuple[Any, ...]:
    """Feed chunks to an HTTPReader: ("ok", head, leftover), ("more",) or the error."""
    max_line, max_headers, max_size = limits
    reader = handshake.HTTPReader(
        kind, max_line=max_line, max_headers=max_headers, max_size=max_size
    )
    fed = 0
    try:
        for chunk in chunks:
            fed += len(chunk)
            head = reader.feed(chunk)
            if head is not None:
                assert reader.done
                return ("ok", head, reader.leftover, fed)
    except InvalidRequest as error:
        assert kind == "request", "InvalidRequest while reading a response"
        assert error.status in (400, 431), f"status {error.status}"
        return ("error", InvalidRequest, error.status, error.message)
    except InvalidResponse as error:
        assert kind == "response", "InvalidResponse while reading a request"
        return ("error", InvalidResponse, str(error))
    return ("more",)


def check_handshake(data: bytes) -> None:
    source = Input(data)
    flags = source.byte()
    kind = "response" if flags & 1 else "request"
    limits = HEAD_LIMITS[(flags >> 1) % len(HEAD_LIMITS)]
    sizes = source.sizes()
    wire = source.rest()
    result = read_head(kind, limits, chunked(wire, sizes))
    whole = read_head(kind, limits, [wire])
    if result[0] == "ok":
        # The head ends where the leftover starts, whatever the chunking.
        assert whole[0] == "ok" and whole[1] == result[1], "chunking changed the head"
        head, leftover, fed = result[1], result[2], result[3]
        assert wire[:fed].endswith(leftover) and (wire[:fed])[: fed - len(leftover)].endswith(
            b"\r\n\r\n"
        ), "leftover is not what followed the head"
        assert fed - len(leftover) <= limits[2], "the head is larger than max_size"
        again = read_head(kind, (2**20, 1000, 2**22), [head.serialize()])
        if kind == "request" or not head.body:
            assert again[0] == "ok" and again[1] == head, "a head does not survive serialize"
        check_head(kind, head, flags)
    else:
        # A head that breaks several limits (line length, head size) may report
        # whichever the bytes received so far show first: the same refusal, with
        # 400 or 431. Whether a head is refused never depends on the chunking.
        assert whole[0] == result[0] and whole[1:2] == result[1:2], (
            f"chunking changed the outcome: {whole} != {result}"
        )
        if result[0] == "more":
            assert len(wire) <= limits[2], "more than max_size buffered without an error"


def check_head(kind: str, head: Any, flags: int) -> None:
    options = deflate.DeflateOptions() if flags & 2 else None
    if kind == "request":
        try:
            accepted = handshake.accept(
                head,
                subprotocols=["chat", "superchat"] if flags & 4 else None,
                origins=["http://localhost", None] if flags & 8 else None,
                compression=options,
            )
        except InvalidRequest as error:
            assert 400 <= error.status < 500, f"status {error.status}"
            return
        response = accepted.response
        assert response.status == 101
        # Our own 101 must satisfy our own client.
        key = head.headers["Sec-WebSocket-Key"]
        chosen, _ = handshake.check_response(response, key, ["chat", "superchat"], options)
        assert chosen == accepted.subprotocol
    else:
        try:
            handshake.check_response(head, "dGhlIHNhbXBsZSBub25jZQ==", ["chat"], options)
        except (InvalidStatus, InvalidResponse):
            pass


# permessage-deflate --------------------------------------------------------------------

ROOMS = [None, 0, 1, 10, 100, 1000, 65536, 65537, 2**20]
TAIL = b"\x00\x00\xff\xff"


def messages(source: Input) -> List[List[bytes]]:
    """The rest of the input as messages of fragments: 0xFF 0xFE ends a fragment,
    0xFF 0xFD a message (cut points that a real deflate stream rarely has)."""
    return [message.split(b"\xff\xfe") for message in source.rest().split(b"\xff\xfd")]


def inflate_messages(
    bits: int, no_takeover: bool, room: Optional[int], stream: List[List[bytes]]
) -> List[Any]:
    extension = deflate.PerMessageDeflate(
        local_no_context_takeover=False,
        remote_no_context_takeover=no_takeover,
        local_max_window_bits=15,
        remote_max_window_bits=bits,
    )
    results: List[Any] = []
    for fragments in stream:
        extension.start_message()
        produced = b""
        try:
            for i, fragment in enumerate(fragments):
                left = None if room is None else room - len(produced)
                piece = extension.inflate(fragment, left, i == len(fragments) - 1)
                assert isinstance(piece, bytes)
                assert left is None or len(piece) <= left, "inflated past room"
                produced += piece
        except ProtocolError as error:
            assert error.code in (1007, 1009), f"close code {error.code}"
            results.append(("error", type(error), error.code))
            return results  # the connection fails here
        results.append(("ok", produced))
    return results


def reference(bits: int, no_takeover: bool, room: Optional[int], stream: List[List[bytes]]) -> Any:
    """What RFC 7692 section 7.2.2 says, with plain zlib: append the tail, inflate.

    A message may end its deflate stream with a BFINAL block (section 7.2.3.4,
    bytes after it are padding); the next message then starts a new stream.
    """
    decompressor = None
    results: List[Any] = []
    for fragments in stream:
        if decompressor is None or no_takeover or decompressor.eof:
            decompressor = zlib.decompressobj(-bits)
        data = b"".join(fragments) + TAIL
        try:
            output = decompressor.decompress(data, 0 if room is None else room + 1)
        except zlib.error:
            results.append(("error", 1007))
            return results
        if room is not None and (len(output) > room or decompressor.unconsumed_tail):
            results.append(("error", 1009))
            return results
        results.append(("ok", output))
    return results


def check_inflate(data: bytes) -> None:
    source = Input(data)
    flags = source.byte()
    bits = 8 + (flags & 7)
    no_takeover = bool(flags & 8)
    room = ROOMS[(flags >> 4) % len(ROOMS)]
    stream = messages(source)[:16]
    # A message both too large and corrupt may fail with 1009 or 1007, depending
    # on where zlib notices the corruption: error codes are not compared.
    results = coarse(inflate_messages(bits, no_takeover, room, stream))
    # Fragmentation must not matter: the same messages, each in one fragment.
    joined = [[b"".join(fragments)] for fragments in stream]
    assert coarse(inflate_messages(bits, no_takeover, room, joined)) == results, (
        "fragmenting matters"
    )
    assert coarse(reference(bits, no_takeover, room, stream)) == results, (
        "inflate disagrees with zlib"
    )


def coarse(results: List[Any]) -> List[Any]:
    return [("error",) if result[0] == "error" else result for result in results]


# Registry ------------------------------------------------------------------------------

CHECKS: Dict[str, Callable[[bytes], None]] = {
    "frames": check_frames,
    "utf8": check_utf8,
    "handshake": check_handshake,
    "inflate": check_inflate,
}


def run(target: str, data: bytes) -> None:
    """Run one check; anything but AssertionError escaping is a crash too."""
    CHECKS[target](data)
