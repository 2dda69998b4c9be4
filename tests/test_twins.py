"""The protocol modules' compiled twins against their Python source.

setup.py compiles ``wscodec/connection.py``, ``wscodec/receive_buffer.py``,
``wscodec/asyncio/messages.py`` and ``wscodec/asyncio/connection.py`` a second
time, as extension types (``wscodec._backend.compiled_twin``). Same source, but Cython's semantics are
not exactly Python's (typed attributes, bound methods, integer and exception
corners), so the two get the same hostile input in random chunks here and
must agree on every event, every byte they answer, and every state.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_differential import cut, streams
from wscodec import _backend
from wscodec.asyncio import messages as messages_module
from wscodec.connection import PythonConnection, Role
from wscodec.deflate import PerMessageDeflate
from wscodec.received import Fragment

CLASSES = {
    "wscodec.connection": "Connection",
    "wscodec.receive_buffer": "ReceiveBuffer",
    "wscodec.asyncio.messages": "MessageQueue",
    "wscodec.asyncio.connection": "AsyncConnection",
}


def compiled(name: str):
    if _backend.compiled_codec is None:
        pytest.skip(f"no compiled module in this install ({_backend.compiled_error})")
    return importlib.import_module(name)


def compiled_connection():
    # Its parser is typed as the compiled FrameParser (src/wscodec/_connection_c.pxd),
    # so it runs only beside the compiled codec, the one backend it is used with.
    if _backend.BACKEND == "python":
        pytest.skip("the compiled Connection runs on the compiled codec only")
    return compiled("wscodec._connection_c").Connection


def test_every_twin_has_its_class():
    assert sorted(CLASSES) == sorted(_backend.TWINS)


@pytest.mark.parametrize("source", sorted(_backend.TWINS))
def test_each_module_uses_its_compiled_twin_with_the_compiled_backend(source):
    name, class_name = _backend.TWINS[source], CLASSES[source]
    module = importlib.import_module(source)
    in_use = getattr(module, class_name)
    python_class = getattr(module, f"Python{class_name}")
    if _backend.BACKEND == "python":
        assert in_use is python_class
    else:
        twin = importlib.import_module(name)  # built with the codec: an ImportError fails
        assert in_use is getattr(twin, class_name)
        assert in_use is not python_class
        # Python 3.13 strips the docstring's indentation when compiling; Cython does not.
        assert inspect.cleandoc(in_use.__doc__) == inspect.cleandoc(python_class.__doc__)


def states(connection_class, role, deflate, chunks, plain=False):
    """What a connection reports after each chunk: events, bytes to send, state."""
    kwargs = {"max_message_size": 1000, "max_fragments": 8, "plain_messages": plain}
    if deflate:
        kwargs["deflate"] = PerMessageDeflate(
            local_no_context_takeover=False,
            remote_no_context_takeover=False,
            local_max_window_bits=12,
            remote_max_window_bits=15,
        )
    connection = connection_class(role, **kwargs)
    history = []
    for chunk in [*chunks, b""]:
        events = connection.receive_data(chunk)
        while connection.pending_input:
            events += connection.receive_data(b"")
        failure = connection.failure
        history.append(
            (
                events,
                # A client masks what it sends with random keys: compare sizes.
                connection.data_to_send()
                if role is Role.SERVER
                else len(connection.data_to_send()),
                connection.state,
                connection.close_code,
                connection.close_reason,
                connection.close_sent,
                None if failure is None else (type(failure), failure.code, failure.reason),
            )
        )
    return history


@given(streams(), st.lists(st.integers(0, 5000), max_size=12), st.booleans(), st.booleans())
def test_connection_twins_agree_on_hostile_input(stream, points, deflate, plain):
    twin = compiled_connection()
    options, data = stream
    role = Role.SERVER if options["mask_expected"] else Role.CLIENT
    chunks = cut(data, points)
    assert states(twin, role, deflate, chunks, plain) == states(
        PythonConnection, role, deflate, chunks, plain
    )


@given(st.lists(st.binary(max_size=300), max_size=6), st.lists(st.integers(0, 5000), max_size=6))
def test_connection_twins_agree_on_compressed_messages(messages, points):
    # Valid compressed frames (the hostile streams above are mostly not).
    compressor = zlib.compressobj(wbits=-15)
    data = b""
    for message in messages:
        payload = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        header = bytes([0xC2, 0x80 | len(payload[:-4])]) if len(payload) - 4 < 126 else None
        if header is None:
            continue
        data += header + b"\x00\x00\x00\x00" + payload[:-4]
    twin = compiled_connection()
    chunks = cut(data, points)
    assert states(twin, Role.SERVER, True, chunks) == states(
        PythonConnection, Role.SERVER, True, chunks
    )


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.one_of(st.binary(max_size=3), st.text(max_size=3))),
        st.tuples(
            st.just("put"),
            st.builds(Fragment, st.one_of(st.binary(max_size=3)), st.booleans()),
        ),
        st.tuples(st.sampled_from(["take", "ready", "discard_new", "close", "len"]), st.none()),
    ),
    max_size=40,
)


def queue_history(queue_class, operations):
    loop = asyncio.new_event_loop()
    calls = []
    try:
        queue = queue_class(
            loop, lambda: calls.append("pause"), lambda: calls.append("resume"), 3, 1
        )
        history = []
        for operation, argument in operations:
            try:
                if operation == "put":
                    result = queue.put(argument)
                elif operation == "len":
                    result = len(queue)
                else:
                    result = getattr(queue, operation)()
            except Exception as error:  # the same error, from both
                result = (type(error), str(error))
            history.append((operation, result, queue.paused, queue.closed, list(calls)))
        return history
    finally:
        loop.close()


@given(OPERATIONS)
def test_message_queue_twins_agree(operations):
    twin = compiled("wscodec.asyncio._messages_c").MessageQueue
    python = messages_module.PythonMessageQueue
    assert queue_history(twin, operations) == queue_history(python, operations)


def buffer_history(buffer_class, reads):
    """Each read's length and the size of the buffer the next read gets."""
    buffer = buffer_class()
    history = []
    for fraction in reads:
        count = round(len(buffer.view) * fraction)
        buffer.view[:count] = b"x" * count
        data = buffer.filled(count)
        history.append((len(data), bytes(data[-1:]), len(buffer.view)))
    return history


# Full reads switch to the large buffer, a run of small ones switches back.
READS = st.lists(st.sampled_from([0.0, 0.001, 0.05, 0.06, 0.5, 1.0]), max_size=60)


@given(READS)
def test_receive_buffer_twins_agree(reads):
    twin = compiled("wscodec._receive_buffer_c").ReceiveBuffer
    python = importlib.import_module("wscodec.receive_buffer").PythonReceiveBuffer
    assert buffer_history(twin, reads) == buffer_history(python, reads)


def test_receive_buffer_grows_after_a_full_read_and_shrinks_back():
    from wscodec.receive_buffer import ReceiveBuffer

    history = buffer_history(ReceiveBuffer, [1.0] + [0.01] * 16)
    small, large = history[0][0], history[0][2]
    assert large > small
    assert [size for _, _, size in history[1:16]] == [large] * 15
    assert history[16][2] == small


def test_setup_builds_exactly_the_twins_the_backend_uses():
    """setup.py's TWINS (what is compiled, from which source) and _backend.TWINS
    (which module swaps in which compiled name) must name the same pairs."""
    import ast
    from pathlib import Path

    setup = Path(__file__).resolve().parent.parent / "setup.py"
    if not setup.exists():
        pytest.skip("setup.py is not beside these tests (a wheel's suite, run from a copy)")
    tree = ast.parse(setup.read_text())
    [built] = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "TWINS"
    ]
    from_source = {source[: -len(".py")].replace("/", "."): name for name, source in built.items()}
    assert from_source == _backend.TWINS
