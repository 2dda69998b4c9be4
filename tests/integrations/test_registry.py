"""The integration machinery, autobahn/ws4py adapters at kernel level, and the wsaccel surface."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import wscodec
from tests.peers import installed, peers_required, require
from wscodec import integrations
from wscodec.integrations import IntegrationError, adapter
from wscodec.integrations._compat import QuadUtf8Validator
from wscodec.integrations._patching import parse_version
from wscodec.wsaccel import Utf8Validator, XorMaskerNull, XorMaskerSimple, createXorMasker


def test_importing_wscodec_imports_no_peer():
    code = (
        "import sys, wscodec, wscodec.integrations; wscodec.install;"
        "peers = {'websockets','wsproto','websocket','tornado','aiohttp','autobahn','ws4py'};"
        "sys.exit(sorted(m for m in sys.modules if m.split('.')[0] in peers) != [])"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
    assert wscodec.install is integrations.install


def test_install_is_idempotent_and_thread_safe():
    require("tornado", "tornado.websocket")
    import tornado.websocket

    original = tornado.websocket._websocket_mask
    results = []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        results.append(integrations.install("tornado"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(map(len, results)) == [0] * 7 + [1]
        assert tornado.websocket._websocket_mask is not original
        assert integrations.install("tornado") == []
    finally:
        assert integrations.uninstall("tornado") == ["tornado"]
    assert tornado.websocket._websocket_mask is original
    assert integrations.uninstall("tornado") == []


def test_refuses_when_an_attribute_moved(monkeypatch):
    require("websocket_client", "websocket")
    from websocket import _abnf

    original_mask = _abnf._mask
    monkeypatch.delattr(_abnf, "validate_utf8")
    with pytest.raises(IntegrationError, match=r"websocket\._abnf\.validate_utf8"):
        integrations.install("websocket_client")
    assert _abnf._mask is original_mask
    assert not adapter("websocket_client").installed


def test_refuses_an_untested_version(monkeypatch):
    require("tornado", "tornado.websocket")
    import tornado.websocket

    ad = adapter("tornado")
    monkeypatch.setattr(ad, "tested", ("1.0", "2.0"))
    original = tornado.websocket._websocket_mask
    with pytest.raises(IntegrationError, match=r"tested with tornado >=1\.0,<2\.0"):
        ad.install()
    assert tornado.websocket._websocket_mask is original
    assert ad.install(force=True) is True
    assert ad.uninstall() is True
    assert tornado.websocket._websocket_mask is original


def test_unknown_and_missing_libraries(monkeypatch):
    with pytest.raises(ValueError, match="no wscodec adapter"):
        integrations.install("nope")
    monkeypatch.setitem(integrations.ADAPTERS, "ws4py", "no_such_module_xyz")
    with pytest.raises(IntegrationError, match="not importable"):
        integrations.install("ws4py")


def test_autopatch_reads_the_environment(monkeypatch):
    require("tornado", "tornado.websocket")
    require("aiohttp", "aiohttp._websocket.writer")
    monkeypatch.delenv("WSCODEC_AUTOPATCH", raising=False)
    assert integrations.autopatch() == []
    monkeypatch.setenv("WSCODEC_AUTOPATCH", "tornado, aiohttp")
    try:
        assert integrations.autopatch() == ["tornado", "aiohttp"]
        assert adapter("tornado").installed and adapter("aiohttp").installed
    finally:
        integrations.uninstall()
    assert not adapter("tornado").installed


def test_parse_version():
    assert parse_version("17.4") == (17, 4)
    assert parse_version("1.9.2rc1") == (1, 9, 2)
    with pytest.raises(ValueError):
        parse_version("dev")


# -- the wsaccel surface and the shared objects autobahn and ws4py get ------------


def xor(data, key, start=0):
    return bytes(c ^ key[(i + start) % 4] for i, c in enumerate(data))


def test_wsaccel_maskers():
    masker = createXorMasker(b"\1\2\3\4", 1000)
    assert isinstance(masker, XorMaskerSimple)
    first, second = masker.process(b"abcdefg"), masker.process(bytearray(b"hij"))
    assert first + second == xor(b"abcdefghij", b"\1\2\3\4")
    assert type(first) is bytes and masker.pointer() == 10
    masker.reset()
    assert masker.process(b"ab") == xor(b"ab", b"\1\2\3\4") and masker.pointer() == 2
    null = XorMaskerNull()
    assert null.process(b"abc") == b"abc" and null.pointer() == 3
    with pytest.raises(ValueError):
        XorMaskerSimple(b"abc")
    import wscodec.wsaccel as wsaccel

    assert wsaccel.xormask.XorMaskerSimple is XorMaskerSimple
    assert wsaccel.utf8validator.Utf8Validator is Utf8Validator


CHUNKED = [
    [b"abc"],
    [b"a\xc3", b"\xa9z"],
    [b"\xe2\x82", b"\xac"],
    [b"\xf0\x9d", b"\x84\x9e", b"x"],
    [b"ok \xff", b"more"],
    [b"\xc3\xa9\xc3", b"\x28"],
    [b"ab\xed", b"\xa0\x80"],
    [b"\xf4\x90\x80\x80"],
    [b"\xe0\x80\x80"],
    [b"", b"\xc2"],
    [b"\x80"],
]


def quads(validator_type, chunks):
    validator = validator_type()
    return [tuple(validator.validate(chunk)) for chunk in chunks]


@pytest.mark.parametrize("chunks", CHUNKED)
def test_utf8_quad_matches_wsaccel_and_autobahn(chunks):
    ours = quads(QuadUtf8Validator, chunks)
    assert quads(Utf8Validator, chunks) == ours
    reference = []
    try:
        from wsaccel.utf8validator import Utf8Validator as Reference

        reference.append(Reference)
    except ImportError:
        pass
    try:
        from autobahn.websocket.utf8validator import Utf8Validator as Autobahn

        reference.append(Autobahn)
    except ImportError:
        pass
    if len(reference) < 2:
        message = "wsaccel or autobahn is not installed to compare with"
        if peers_required():
            pytest.fail(message)
        if not reference:
            pytest.skip(message)
    for other in reference:
        theirs = quads(other, chunks)
        if other.__module__.startswith("autobahn"):
            # autobahn's native validator keeps going after a failure; autobahn
            # fails the connection at the first one, so compare up to there.
            stop = next((i + 1 for i, quad in enumerate(ours) if not quad[0]), len(ours))
            theirs, ours = theirs[:stop], ours[:stop]
        assert theirs == ours, other


def test_autobahn_adapter():
    require("autobahn", "autobahn.websocket.protocol")
    from autobahn.websocket import protocol

    with installed("autobahn") as ad:
        masker = protocol.create_xor_masker(b"\1\2\3\4", 300)
        assert masker.process(b"abc") + masker.process(b"de") == xor(b"abcde", b"\1\2\3\4")
        assert masker.pointer() == 5
        validator = protocol.Utf8Validator()
        assert validator.validate(b"\xc3") == (True, False, 1, 1)
        assert validator.validate(b"\xa9") == (True, True, 1, 2)
        assert ad.calls == {
            "create_xor_masker": 1,
            "Utf8Validator": 2,
            "WebSocketProtocol.sendFrame": 0,
        }


def test_ws4py_adapter():
    require("ws4py", "ws4py.framing", "ws4py.streaming")
    from ws4py import streaming
    from ws4py.framing import OPCODE_TEXT, Frame

    frame = Frame(opcode=OPCODE_TEXT, body=b"hello", masking_key=b"\1\2\3\4", fin=1)
    without = (frame.mask(b"hello world"), frame.unmask(b"hello world"), frame.build())
    with installed("ws4py") as ad:
        assert (frame.mask(b"hello world"), frame.unmask(b"hello world")) == without[:2]
        assert frame.build() == without[2]
        assert type(frame.mask(b"x")) is bytearray
        stream = streaming.Stream()
        masked = Frame(
            opcode=OPCODE_TEXT, body="héllo".encode(), masking_key=b"\5\6\7\x08", fin=1
        ).build()
        stream.parser.send(masked)
        assert stream.has_message and str(stream.message) == "héllo"
        stream = streaming.Stream()
        stream.parser.send(
            Frame(opcode=OPCODE_TEXT, body=b"\xff", masking_key=b"\5\6\7\x08", fin=1).build()
        )
        assert [int(m.code) if hasattr(m, "code") else None for m in stream.errors] == [1007]
        assert ad.calls["Frame.mask"] >= 3 and ad.calls["Utf8Validator"] >= 1
