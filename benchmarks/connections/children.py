"""Child processes spoken to one line at a time, every answer awaited with a deadline."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

from wscodec import FrameParser, Opcode, encode_frame

from .clients import handshake

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Child:
    """``python -m MODULE ARGS`` under ``nice``, its stdin and stdout as pipes."""

    def __init__(self, module: str, *args: str, nofile: int) -> None:
        env = dict(os.environ, WSCODEC_BENCH_NOFILE=str(nofile))
        env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
        # Abrupt disconnects at the end make some servers log tracebacks: kept in a file.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="wscodec-bench-", suffix=".log")
        self.process = subprocess.Popen(
            ["nice", "-n", "5", sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
            env=env,
            cwd=_ROOT,
        )
        self.name = f"{module} {' '.join(args)}"
        self._read = b""  # stdout read past the last line returned

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def line(self, timeout: float) -> str:
        """The next line of the child's output (read from the descriptor: a buffered
        reader could hold a second line that select() no longer sees)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self._read:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"{self.name}: no answer within {timeout:.0f} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._read += chunk
        line, _, self._read = self._read.partition(b"\n")
        if not line:
            self.log.seek(0)
            tail = self.log.read()[-2000:]
            raise RuntimeError(f"{self.name} exited ({self.process.poll()}):\n{tail}")
        return line.decode()

    def answer(self, timeout: float = 120.0) -> Dict[str, Any]:
        result: Dict[str, Any] = json.loads(self.line(timeout))
        return result

    def ask(self, line: str, timeout: float = 120.0) -> Dict[str, Any]:
        self.send(line)
        return self.answer(timeout)

    def stop(self) -> None:
        try:
            self.send("stop")
            self.process.stdin.close()  # type: ignore[union-attr]
            self.process.wait(20)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.process.kill()
            self.process.wait()
        self.log.close()


def echo_latencies(port: int, count: int = 200) -> List[float]:
    """A fresh client's round trips (64 bytes), in seconds, sorted."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(handshake(False))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        parser = FrameParser(mask_expected=False, max_frame_size=None, allowed_rsv=0x40)
        pending = parser.feed(head.partition(b"\r\n\r\n")[2])
        frame = encode_frame(Opcode.BINARY, b"l" * 64, mask=b"wxyz")
        times = []
        for _ in range(count):
            started = time.monotonic()
            sock.sendall(frame)
            while not pending:
                pending = parser.feed(sock.recv(65536))
            pending = pending[1:]
            times.append(time.monotonic() - started)
        return sorted(times)
    finally:
        sock.close()


def percentile(values: List[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))]
