"""The ``wscodec`` command, run as a subprocess as a user would run it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, List

import pytest

import wscodec
from tests.helpers import echo, running_demo, running_server
from wscodec import ConnectionClosed, connect
from wscodec.cli import _with_default_command, build_parser

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
COMMAND = [sys.executable, "-m", "wscodec"]
# Piped input: wait this long for the last replies, generous for a busy machine.
LINGER = ["--linger", "2"]


def run(*args: str, input: str = "", timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


class Running:
    """A server command running in a subprocess, with its output read line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [*COMMAND, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        self.lines: List[str] = []
        self._buffer = b""

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match:
        """Read stdout until a line matches ``pattern``."""
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while True:
                for line in self.lines:
                    match = re.search(pattern, line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise AssertionError(f"no line matching {pattern!r} in {self.lines}")
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise AssertionError(f"exited before {pattern!r}: {self.lines} {stderr}")
                self._buffer += chunk
                *complete, self._buffer = self._buffer.split(b"\n")
                self.lines += [line.decode() for line in complete]
        finally:
            selector.close()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            # faulthandler (PYTHONFAULTHANDLER) prints every thread's stack on SIGABRT.
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(10)
            stderr = self.process.stderr.read().decode() if self.process.stderr else ""
            raise AssertionError(f"still running {timeout} s after {sig!r}:\n{stderr}") from None

    def output(self) -> str:
        assert self.process.stdout is not None
        return "\n".join(self.lines) + self._buffer.decode() + self.process.stdout.read().decode()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def running(*args: str) -> Iterator[Running]:
    command = Running(*args)
    try:
        yield command
    finally:
        command.kill()


def one_error_line(stderr: str) -> str:
    """The single line a failing command prints; never a traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("wscodec: error: ")
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Arguments ------------------------------------------------------------------------------


def test_no_arguments_mean_the_demo_on_8765():
    args = build_parser().parse_args(_with_default_command([]))
    assert (args.command, args.host, args.port) == ("demo", "127.0.0.1", 8765)
    args = build_parser().parse_args(_with_default_command(["--port", "9000"]))
    assert (args.command, args.port) == ("demo", 9000)


@pytest.mark.parametrize("command", [[], ["demo"], ["echo"], ["connect"], ["info"]])
def test_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: wscodec {' '.join(command)}".rstrip())
    assert result.stderr == ""


def test_top_level_help_lists_the_commands():
    out = run("--help").stdout
    for command in ("demo", "echo", "connect", "info"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), out


def test_version():
    result = run("--version")
    assert result.stdout.strip() == f"wscodec {wscodec.__version__}"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "99999"], "invalid port 99999"),
        (["echo", "--port", "http"], "invalid port 'http'"),
        (["connect"], "the following arguments are required: URI"),
        (["bogus"], "invalid choice: 'bogus'"),
    ],
)
def test_bad_command_lines_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_console_script_is_installed():
    script = shutil.which("wscodec", path=str(Path(sys.executable).parent))
    assert script is not None, "the wscodec console script is not installed beside python"
    result = subprocess.run([script, "info"], capture_output=True, text=True, timeout=30, env=ENV)
    assert result.returncode == 0
    assert f"backend: {wscodec.BACKEND}" in result.stdout


# wscodec info ---------------------------------------------------------------------------


def test_info():
    result = run("info")
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith(f"wscodec {wscodec.__version__}\n")
    assert f"backend: {wscodec.BACKEND}\n" in out
    assert re.search(r"^cpu: \S+", out, re.MULTILINE)
    compiled = wscodec._backend.compiled_codec
    if compiled is None:
        assert f"compiled module: missing: {wscodec._backend.compiled_error}" in out
        assert "kernels: pure Python" in out
    else:
        assert f"compiled module: {compiled.__file__}\n" in out
        assert ("kernels use: " in out) == (wscodec.BACKEND == "cython")
    if wscodec.BACKEND == "python" and compiled is not None:
        assert "compiled module not in use: WSCODEC_NO_EXTENSIONS is set" in out


@pytest.mark.parametrize("forced", ["1", "0"])
def test_info_names_kernel_levels_only_on_the_compiled_backend(forced):
    """With WSCODEC_NO_EXTENSIONS=1 the compiled kernels are not in use: no SIMD levels shown."""
    result = subprocess.run(
        [*COMMAND, "info"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**ENV, "WSCODEC_NO_EXTENSIONS": forced},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    on_python = forced == "1" or wscodec._backend.compiled_codec is None
    assert (f"backend: {'python' if on_python else 'cython'}\n") in out
    if on_python:
        assert "kernels: pure Python, no CPU-specific code" in out
        # The cpu: line lists what the CPU has; nothing else may name a kernel level.
        rest = "\n".join(line for line in out.splitlines() if not line.startswith("cpu: "))
        for level in (
            "avx512",
            "avx2",
            "sse2",
            "neon",
            "kernels use:",
            "SIMD levels",
            "GIL released",
        ):
            assert level not in rest
        if wscodec._backend.compiled_codec is not None:
            assert "(WSCODEC_NO_EXTENSIONS is set; the compiled kernels are not in use)" in out
    else:
        assert "kernels use: mask " in out
        assert "SIMD levels built in: portable" in out


# The servers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, kind", [((), "asyncio"), (("--asyncio",), "asyncio"), (("--threaded",), "threaded")]
)
def test_demo_serves_page_and_chat_then_ctrl_c_closes_with_1001(flags, kind):
    with running("demo", "--port", "0", *flags) as demo:
        url = demo.wait_for(r"open (http://127\.0\.0\.1:(\d+)/) in a browser")
        assert demo.wait_for(r"backend: (\w+)").group(1) == wscodec.BACKEND
        assert demo.wait_for(r"server: (\w+)").group(1) == kind
        page, port = url.group(1), int(url.group(2))
        with urllib.request.urlopen(page, timeout=10) as response:
            assert response.status == 200
            assert b"<title>wscodec chat</title>" in response.read()
        with connect(f"ws://127.0.0.1:{port}/ws") as client:
            client.send(json.dumps({"type": "join", "name": "cli"}))
            welcome = json.loads(client.recv(timeout=10))
            assert welcome["type"] == "welcome" and welcome["backend"] == wscodec.BACKEND
            assert demo.stop(signal.SIGINT) == 0
            with pytest.raises(ConnectionClosed):
                while True:
                    client.recv(timeout=10)
            assert client.close_code == 1001
        assert "shutting down: closing 1 connection(s) with 1001" in demo.output()


@pytest.mark.parametrize("flags", [(), ("--events",), ("--asyncio",), ("--uvloop",)])
def test_echo_server_echoes_then_sigterm_closes_with_1001(flags):
    with running("echo", "--port", "0", *flags) as server:
        port = int(server.wait_for(r"echo server on ws://127\.0\.0\.1:(\d+)/").group(1))
        with connect(f"ws://127.0.0.1:{port}/any/path?x=1") as client:
            client.send("text é")
            assert client.recv(timeout=10) == "text é"
            client.send(b"\x00\xff" * 40000)
            assert client.recv(timeout=10) == b"\x00\xff" * 40000
            assert server.stop(signal.SIGTERM) == 0
            with pytest.raises(ConnectionClosed):
                client.recv(timeout=10)
            assert client.close_code == 1001


@pytest.mark.parametrize("command", [["demo"], ["echo"], ["echo", "--asyncio"]])
def test_port_in_use_is_one_line_and_exit_1(command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(*command, "--port", str(port))
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert line == f"wscodec: error: cannot listen on 127.0.0.1:{port}: address already in use"


def test_unknown_host_is_one_line_and_exit_1():
    result = run("echo", "--host", "no-such-host.invalid", "--port", "0")
    assert result.returncode == 1
    assert one_error_line(result.stderr).startswith(
        "wscodec: error: cannot listen on no-such-host.invalid:0: "
    )


# wscodec connect ---------------------------------------------------------------------------


def test_connect_sends_lines_and_prints_replies():
    with running_server(echo) as server:
        result = run(
            "connect", f"ws://127.0.0.1:{server.port}/", *LINGER, input="hello\nwörld\n\nlast"
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< hello\n< wörld\n< \n< last\n"
    assert "connection closed: 1000" in result.stderr


def test_connect_prints_binary_and_server_messages():
    def greeter(connection):
        connection.send("welcome")
        connection.send(b"\x00\x01\xfe")
        for message in connection:
            connection.send(message.upper())

    with running_server(greeter) as server:
        result = run("connect", f"ws://127.0.0.1:{server.port}/", *LINGER, input="shout\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "< welcome\n< (binary, 3 bytes) 0001fe\n< SHOUT\n"


def test_connect_closes_at_end_of_input_even_if_the_server_keeps_talking():
    def chatty(connection):
        while True:
            connection.send("tick")
            try:
                connection.recv(timeout=0.05)
            except TimeoutError:
                pass

    with running_server(chatty) as server:
        started = time.monotonic()
        result = run("connect", f"ws://127.0.0.1:{server.port}/", "--linger", "0.3", input="bye\n")
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("< tick\n")
    assert elapsed < 15  # ten times the linger, plus starting Python


def test_connect_reports_an_error_close_and_exits_1():
    def strict(connection):
        connection.recv()
        connection.close(1008, "go away")

    with running_server(strict) as server:
        result = run("connect", f"ws://127.0.0.1:{server.port}/", *LINGER, input="hi\nmore\n")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "wscodec: error: connection closed: 1008 (go away)"
    )
    assert "Traceback" not in result.stderr


def test_connect_to_the_demo_chat():
    lines = [
        json.dumps({"type": "join", "name": "piped"}),
        json.dumps({"type": "message", "text": "hi"}),
    ]
    with running_demo(stats_interval=60) as server:  # no stats to keep the client waiting
        result = run(
            "connect", f"ws://127.0.0.1:{server.port}/ws", *LINGER, input="\n".join(lines) + "\n"
        )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line[2:]) for line in result.stdout.splitlines()]
    assert all(line.startswith("< ") for line in result.stdout.splitlines())
    said = [e for e in events if e["type"] == "message"]
    assert [e["type"] for e in events][:2] == ["welcome", "join"]
    assert said[0]["name"] == "piped" and said[0]["text"] == "hi"


@pytest.mark.parametrize(
    "uri, message",
    [
        (
            "http://127.0.0.1:8765/",
            "invalid URI: 'http://127.0.0.1:8765/' is not a ws:// or wss:// URI",
        ),
        ("ws://", "invalid URI: 'ws://' has no host"),
        ("ws://127.0.0.1:99999/", "invalid URI: 'ws://127.0.0.1:99999/' is not a valid URI"),
        ("not a uri", "invalid URI: 'not a uri' is not a ws:// or wss:// URI"),
    ],
)
def test_connect_bad_uri_exits_2(uri, message):
    result = run("connect", uri)
    assert result.returncode == 2
    assert one_error_line(result.stderr).startswith(f"wscodec: error: {message}")


def test_connect_refused_exits_1():
    port = free_port()
    result = run("connect", f"ws://127.0.0.1:{port}/")
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"wscodec: error: cannot connect to ws://127.0.0.1:{port}/: connection refused"
    )


def test_connect_to_a_plain_http_page_exits_1():
    with running_demo() as server:
        uri = f"ws://127.0.0.1:{server.port}/missing"
        result = run("connect", uri)
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"wscodec: error: cannot connect to {uri}: the server answered HTTP 404 Not Found "
        "instead of switching to WebSocket"
    )


def test_connect_unknown_host_exits_1():
    result = run("connect", "ws://no-such-host.invalid/", timeout=60)
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        "wscodec: error: cannot connect to ws://no-such-host.invalid/: unknown host"
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ("-1", "argument --max-size: invalid size -1: negative"),
        ("-4096", "argument --max-size: invalid size -4096: negative"),
        ("1.5", "argument --max-size: invalid size '1.5': not a whole number"),
        ("lots", "argument --max-size: invalid size 'lots': not a whole number"),
    ],
)
def test_echo_refuses_an_invalid_max_size_at_startup(value, message):
    """Issue 21, item 12: a negative limit used to start a server that failed every
    connection with a traceback; it is a usage error (exit status 2) before listening."""
    result = run("echo", "--port", "0", "--max-size", value, timeout=15)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "echo server on" not in result.stdout


@pytest.mark.parametrize(
    "uri, bad",
    [
        ("ws://127.0.0.1:9/a b", "' '"),
        ("ws://127.0.0.1:9/chat?room=a\tb", "'\\t'"),
        ('ws://127.0.0.1:9/"quoted"', "'\"'"),
        ("ws://127.0.0.1:9/caf\u00e9", "'\u00e9'"),
    ],
)
def test_connect_refuses_a_uri_with_invalid_characters(uri, bad):
    """Issue 21, item 12: a raw space (or another character a URI may not hold) was
    sent in the request line; it is refused before connecting, with exit status 2."""
    result = run("connect", uri, timeout=15)
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_error_line(result.stderr)
    assert line.startswith("wscodec: error: invalid URI: "), line
    assert f"contains {bad}" in line, line


def test_the_banner_comes_once_ctrl_c_is_handled():
    """Whoever reads "press Ctrl-C" and presses it gets the clean shutdown, not
    a KeyboardInterrupt (under load a Ctrl-C sent right after the banner,
    printed before the handlers, ended the demo with 130)."""
    import threading

    from wscodec.cli import run_until_interrupted

    class Server:
        connections: List[object] = []

        def __init__(self) -> None:
            self.stopped = threading.Event()

        def serve_forever(self) -> None:
            self.stopped.wait(10)

        def shutdown(self) -> None:
            self.stopped.set()

    class Reader:
        """A terminal user: presses Ctrl-C as soon as the banner says so."""

        def __init__(self) -> None:
            self.lines: List[str] = []

        def write(self, text: str) -> None:
            self.lines.append(text)
            if "press Ctrl-C" in text:
                os.kill(os.getpid(), signal.SIGINT)

        def flush(self) -> None:
            pass

    server, reader = Server(), Reader()
    before = signal.getsignal(signal.SIGINT)
    assert run_until_interrupted(server, reader, ("serving", "press Ctrl-C to stop")) == 0
    assert server.stopped.is_set()
    assert "".join(reader.lines).splitlines() == [
        "serving",
        "press Ctrl-C to stop",
        "shutting down: closing 0 connection(s) with 1001",
        "stopped",
    ]
    assert signal.getsignal(signal.SIGINT) is before
