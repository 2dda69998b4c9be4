"""Threads and re-entrancy (issue 21, item 11), on both backends.

FrameParser and Utf8Validator serve one call at a time: a second call while
one is in progress, from another thread or from code that the first runs,
raises RuntimeError with the same message on both backends and changes
nothing. apply_mask_into holds a buffer export for its whole call, at every
size, so the buffer cannot be resized or freed meanwhile (BufferError).

The overlaps are made deterministic, without hooks in the codec: the first
call is kept inside by code it runs anyway (the check of a close frame's
payload, looked up as a module global; the ``__name__`` of a non bytes-like
argument's type, read for the TypeError; an offset's ``__index__``), and
that code makes the second call, itself or from a thread it waits for.
"""

from __future__ import annotations

import os
import sys
import threading
from types import ModuleType
from typing import Any, Callable, List

import pytest

from wscodec import Opcode, ProtocolError, _backend
from wscodec.protocol import Errors

KEY = bytes.fromhex("37fa213d")


def busy_message(name: str) -> str:
    return Errors.CONCURRENT_USE.format(name=name)


def in_thread(call: Callable[[], Any]) -> Any:
    """Run ``call`` in a new thread and wait for it: its result or its exception."""
    outcome: List[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # handed back to the test
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome[0]


def close_frame(codec: ModuleType) -> bytes:
    return codec.encode_frame(Opcode.CLOSE, b"\x03\xe8bye", mask=KEY)


def keep_feed_inside(
    codec: ModuleType, monkeypatch: pytest.MonkeyPatch, during: Callable[[], Any]
) -> List[Any]:
    """Make every close frame parsed run ``during`` while feed() is still inside.

    Returns the list that collects what ``during`` returned or raised.
    """
    seen: List[Any] = []
    check = codec.parse_close_payload

    def hooked(payload: bytes) -> Any:
        try:
            seen.append(during())
        except Exception as error:  # inspected by the test
            seen.append(error)
        return check(payload)

    monkeypatch.setattr(codec, "parse_close_payload", hooked)
    return seen


def assert_busy(outcome: Any, name: str) -> None:
    assert type(outcome) is RuntimeError, outcome
    assert str(outcome) == busy_message(name)


# FrameParser ------------------------------------------------------------------


def test_feed_reentered_from_a_callback_raises(codec, monkeypatch):
    parser = codec.FrameParser(mask_expected=True)
    second = codec.encode_frame(Opcode.BINARY, b"second", mask=KEY)
    seen = keep_feed_inside(codec, monkeypatch, lambda: parser.feed(second))
    frames = parser.feed(close_frame(codec) + codec.encode_frame(Opcode.TEXT, b"hi", mask=KEY))
    assert len(seen) == 1
    assert_busy(seen[0], "FrameParser")
    # The refused call changed nothing: the first one completed both frames,
    # and the parser serves the next call.
    assert [(f.opcode, f.payload) for f in frames] == [
        (Opcode.CLOSE, b"\x03\xe8bye"),
        (Opcode.TEXT, b"hi"),
    ]
    assert parser.buffered == 0
    assert parser.feed(second)[0].payload == b"second"


@pytest.mark.parametrize("call", ["feed", "whole_message", "pending_payload", "allowed_rsv"])
def test_parser_used_from_a_second_thread_while_busy_raises(codec, monkeypatch, call):
    parser = codec.FrameParser(mask_expected=True)
    calls = {
        "feed": lambda: parser.feed(codec.encode_frame(Opcode.BINARY, b"x", mask=KEY)),
        "whole_message": lambda: parser.whole_message(
            codec.encode_frame(Opcode.TEXT, b"x", mask=KEY)
        ),
        "pending_payload": lambda: parser.pending_payload(),
        "allowed_rsv": lambda: setattr(parser, "allowed_rsv", 0x40),
    }
    seen = keep_feed_inside(codec, monkeypatch, lambda: in_thread(calls[call]))
    wire = close_frame(codec) + codec.encode_frame(Opcode.BINARY, b"0123456789", mask=KEY)
    frames = parser.feed(wire[:-3])
    assert_busy(seen[0], "FrameParser")
    assert parser.allowed_rsv == 0
    # The frame in progress is intact, and the parser takes calls again.
    assert parser.pending_payload() == (Opcode.BINARY, False, b"0123456")
    assert [f.payload for f in frames + parser.feed(wire[-3:])] == [b"\x03\xe8bye", b"0123456789"]
    assert not isinstance(in_thread(calls[call]), Exception)


def test_busy_state_is_cleared_when_feed_raises(codec):
    parser = codec.FrameParser(mask_expected=True)
    with pytest.raises(TypeError):
        parser.feed(12345)
    with pytest.raises(ValueError):
        parser.pending_payload(-1)
    assert parser.feed(codec.encode_frame(Opcode.PING, b"p", mask=KEY))[0].payload == b"p"
    with pytest.raises(ProtocolError, match="reserved opcode"):
        parser.feed(b"\x83\x80")
    with pytest.raises(ProtocolError, match="reserved opcode"):
        parser.feed(b"")  # the parser's own error again, not busy


def test_one_parser_per_thread_runs_concurrently(codec):
    """The guard is per object: parsers of different threads never collide."""
    frame = codec.encode_frame(Opcode.BINARY, os.urandom(3000), mask=KEY)
    barrier = threading.Barrier(4)

    def work() -> int:
        parser = codec.FrameParser(mask_expected=True)
        barrier.wait()
        count = 0
        for _ in range(50):
            for piece in (frame[:7], frame[7:1500], frame[1500:]):
                count += len(parser.feed(piece))
        return count

    results: List[Any] = []
    threads = [threading.Thread(target=lambda: results.append(work())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [50] * 4


def test_shared_parser_raises_instead_of_corrupting(codec):
    """Threads sharing one parser: every call completes whole or is refused whole.

    The compiled backend releases the GIL while it unmasks (threshold lowered
    here), the pure-Python one switches threads between bytecodes, so calls
    may overlap; whether they do in a given run is up to the scheduler. What
    must never happen is a frame that is wrong, lost or split.
    """
    payload = os.urandom(16384)
    frame = codec.encode_frame(Opcode.BINARY, payload, mask=KEY)
    parser = codec.FrameParser(mask_expected=True)
    set_thresholds = getattr(codec, "_set_nogil_thresholds", None)
    old = set_thresholds(mask=1024) if set_thresholds else None
    outcomes: List[Any] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait()
        for _ in range(100):
            try:
                outcomes.append(parser.feed(frame))
            except RuntimeError as error:
                outcomes.append(error)

    try:
        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        if set_thresholds:
            set_thresholds(**old)
    assert len(outcomes) == 200
    for outcome in outcomes:
        if isinstance(outcome, RuntimeError):
            assert_busy(outcome, "FrameParser")
        else:
            assert [f.payload for f in outcome] == [payload]
    assert parser.buffered == 0


# Utf8Validator ----------------------------------------------------------------


def named_by(during: Callable[[], Any], seen: List[Any]) -> object:
    """An object that is not bytes-like and whose type's name runs ``during``.

    Both backends read that name for their TypeError while the call that
    was given the object is still inside.
    """

    class Meta(type):
        @property
        def __name__(cls) -> str:  # type: ignore[override]
            try:
                seen.append(during())
            except Exception as error:  # inspected by the test
                seen.append(error)
            return "Hook"

    return Meta("Hook", (), {})()


@pytest.mark.parametrize("call", ["feed", "finish", "reset"])
def test_validator_reentered_raises(codec, call):
    validator = codec.Utf8Validator()
    assert validator.feed("é".encode()[:1])  # a character left open
    seen: List[Any] = []
    calls = {
        "feed": lambda: validator.feed(b"\xa9"),
        "finish": validator.finish,
        "reset": validator.reset,
    }
    with pytest.raises(TypeError, match="not Hook"):
        validator.feed(named_by(calls[call], seen))
    assert_busy(seen[0], "Utf8Validator")
    # Nothing was fed, finished or reset: the open character completes.
    assert validator.feed(b"\xa9")
    assert validator.finish()


@pytest.mark.parametrize("call", ["feed", "finish", "reset"])
def test_validator_used_from_a_second_thread_while_busy_raises(codec, call):
    validator = codec.Utf8Validator()
    seen: List[Any] = []
    calls = {
        "feed": lambda: validator.feed(b"abc"),
        "finish": validator.finish,
        "reset": validator.reset,
    }
    assert not validator.feed(b"\xff")  # failed: the refused call would reset it
    with pytest.raises(TypeError):
        validator.feed(named_by(lambda: in_thread(calls[call]), seen))
    assert_busy(seen[0], "Utf8Validator")
    assert not validator.finish()  # still failed: not reset by the refused call
    assert not isinstance(in_thread(calls[call]), Exception)


# apply_mask_into ----------------------------------------------------------------


class ResizingOffset:
    """An offset whose ``__index__`` tries to resize the buffer being masked."""

    def __init__(self, buffer: bytearray, value: int = 1) -> None:
        self.buffer = buffer
        self.value = value
        self.errors: List[str] = []

    def __index__(self) -> int:
        for resize in (
            lambda: self.buffer.extend(b"more"),
            lambda: self.buffer.append(0),
            lambda: self.buffer.clear(),  # a no-op, allowed, when empty
        ):
            try:
                resize()
            except BufferError as error:
                # Only the text: the traceback would keep the caller's frame,
                # and the pure-Python twin's export in it, alive.
                self.errors.append(str(error))
        return self.value


@pytest.mark.parametrize("length", [0, 1, 16, 1023, 65536, (1 << 20) + 5])
def test_buffer_cannot_be_resized_while_masked(codec, length):
    data = os.urandom(length)
    buffer = bytearray(data)
    offset = ResizingOffset(buffer)
    codec.apply_mask_into(buffer, KEY, offset)
    assert len(offset.errors) == (3 if length else 2)  # every resize refused while exported
    assert bytes(buffer) == codec.apply_mask(b"\0" + data, KEY)[1:]
    buffer.extend(b"!")  # released afterwards
    assert len(buffer) == length + 1


@pytest.mark.parametrize("length", [16, 4096])
def test_python_twin_holds_the_export_between_its_steps(length):
    """The pure-Python twin runs bytecode between reading and writing the
    buffer, where a thread switch can happen: a resize there must be refused,
    not undone by the twin writing bytes of the old size back."""
    twin = _backend.python_codec
    buffer = bytearray(length)
    resizes: List[str] = []

    # The first read of the buffer's bytes: from_bytes (small), translate (large).
    inside = ("apply_mask_into", "_xor_translate_into")
    reads = ("from_bytes", "translate")

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "c_call" or resizes or frame.f_code.co_name not in inside:
            return
        if getattr(arg, "__name__", "") in reads:
            try:
                buffer.extend(b"x")
                resizes.append("done")
            except BufferError:
                resizes.append("refused")

    sys.setprofile(profile)
    try:
        twin.apply_mask_into(buffer, KEY)
    finally:
        sys.setprofile(None)
    assert resizes == ["refused"]
    assert bytes(buffer) == (KEY * length)[:length]


def test_export_is_released_on_every_error(codec):
    buffer = bytearray(b"abcdefgh")
    for mask, offset, error in (
        (b"abc", 0, ValueError),
        (KEY, -1, ValueError),
        (KEY, "1", TypeError),
        (12, 0, TypeError),
    ):
        with pytest.raises(error):
            codec.apply_mask_into(buffer, mask, offset)
        buffer.extend(b"x")  # would be BufferError if an export leaked
        del buffer[-1:]


def test_masking_from_threads_while_others_resize(codec):
    """Resizers either wait for the masking call or get BufferError; no crash.

    With the GIL this holds whatever the codec does below its release
    threshold; on a free-threaded build it is the export that keeps it so.
    """
    buffers = [bytearray(os.urandom(4096)) for _ in range(4)]
    stop = threading.Event()
    refused: List[int] = []

    def mask() -> None:
        while not stop.is_set():
            for buffer in buffers:
                codec.apply_mask_into(buffer, KEY, 3)

    def resize() -> None:
        count = 0
        for _ in range(2000):
            for buffer in buffers:
                try:
                    buffer.extend(b"1234")
                    del buffer[-4:]
                except BufferError:
                    count += 1
        refused.append(count)

    masker = threading.Thread(target=mask)
    masker.start()
    try:
        resize()
    finally:
        stop.set()
        masker.join(timeout=60)
    assert all(len(buffer) == 4096 for buffer in buffers)
