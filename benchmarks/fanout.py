"""Fan-out throughput: 1 sender, N receivers, local broker versus Redis, 1 or 2 workers.

::

    python benchmarks/fanout.py                  # 500 receivers, 200 messages each
    python benchmarks/fanout.py --receivers 100 --messages 50 --profile

Each configuration starts ``wscodec serve --app relay`` (every text message
a connection sends is published on the broker and sent to every connection
of every worker), opens the receivers from a separate process (raw sockets
and one selector, parsing frames with wscodec's compiled parser, so that
they are not the bottleneck), connects one sender with the wscodec client,
and sends ``--messages`` messages of ``--size`` bytes as fast as it can. It
reports deliveries per second: receivers x messages, divided by the time
from the first send until the last receiver has its last message.

``--profile`` samples the server's worker(s) with py-spy (if installed;
``--gil``: only threads holding the GIL, i.e. running Python) during the run
and prints where the time goes. Needs ``redis-server``
(Debian's package) for the Redis rows; it is started on a free port and
stopped at the end. Every run is bounded by ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import base64
import collections
import multiprocessing
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from wscodec import FrameParser, Opcode, connect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


# Receivers, in a process of their own -----------------------------------------------------


def _handshake(port: int) -> Tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    worker = re.search(rb"X-Wscodec-Worker: (\d+)", head)
    return sock, (worker.group(1) if worker else b"?") + b"|" + rest


def receivers_main(port: int, count: int, messages: int, timeout: float, pipe: Any) -> None:
    """Open ``count`` connections, report ready, count messages until all have arrived."""
    raise_fd_limit(count + 100)
    selector = selectors.DefaultSelector()
    parsers: Dict[socket.socket, FrameParser] = {}
    received: Dict[socket.socket, int] = {}
    workers: collections.Counter = collections.Counter()
    pending: List[bytes] = []
    for _ in range(count):
        sock, extra = _handshake(port)
        worker, _, rest = extra.partition(b"|")
        workers[worker.decode()] += 1
        sock.setblocking(False)
        parsers[sock] = FrameParser(mask_expected=False, max_frame_size=2**24)
        received[sock] = 0
        selector.register(sock, selectors.EVENT_READ)
        pending.append(rest)
    pipe.send(("ready", dict(workers)))
    pipe.recv()  # go
    done_at: Optional[float] = None
    complete = 0
    deadline = time.monotonic() + timeout
    while complete < count and time.monotonic() < deadline:
        for key, _ in selector.select(0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(262144)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(sock)
                continue
            frames = parsers[sock].feed(data)
            before = received[sock]
            received[sock] += sum(1 for frame in frames if frame.opcode == Opcode.TEXT)
            if before < messages <= received[sock]:
                complete += 1
                done_at = time.monotonic()
    pipe.send(("done", sum(received.values()), complete, done_at))
    for sock in parsers:
        sock.close()


# One configuration --------------------------------------------------------------------------


def profile_summary(raw: str, top: int = 12) -> List[str]:
    """Share of samples per leaf function (self time) and per wscodec function (inclusive)."""
    leaf: collections.Counter = collections.Counter()
    ours: collections.Counter = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf[re.sub(r" \(.*?:\d+\)", "", frames[-1])] += count
        seen = set()
        for frame in frames:
            if "wscodec" in frame:
                name = re.sub(r" \((.*?):\d+\)", r" (\1)", frame)
                name = re.sub(r"\(.*?/wscodec/", "(wscodec/", name)
                if name not in seen:
                    seen.add(name)
                    ours[name] += count
    if not total:
        return ["  (no samples)"]
    lines = ["  self time (leaf frames):"]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in leaf.most_common(top)]
    lines.append("  inclusive, wscodec frames:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in ours.most_common(top)]
    return lines


def run_config(
    label: str, broker: Optional[str], workers: int, args: argparse.Namespace
) -> Dict[str, Any]:
    print(f"-- {label}: starting the server", flush=True)
    command = [sys.executable, "-m", "wscodec", "serve", "--app", "relay", "--port", "0"]
    command += ["--workers", str(workers)]
    if broker:
        command += ["--broker", broker]
    server = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    result: Dict[str, Any] = {"label": label}
    try:
        assert server.stdout is not None
        port, pids = 0, []
        while len(pids) < workers:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("the server exited")
            found = re.search(r"on port (\d+)", line)
            if found:
                port = int(found.group(1))
            found = re.search(r"\(pid (\d+)\) ready", line)
            if found:
                pids.append(int(found.group(1)))
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        receivers = context.Process(
            target=receivers_main,
            args=(port, args.receivers, args.messages, args.timeout, theirs),
        )
        receivers.start()
        _, spread = ours.recv()
        print(f"   {args.receivers} receivers connected, per worker pid: {spread}", flush=True)
        result["spread"] = spread
        sender = connect(f"ws://127.0.0.1:{port}/", open_timeout=10)
        # The relay sends the sender its own messages too: read them, or the
        # server would eventually drop it as a slow reader.
        threading.Thread(target=lambda: [None for _ in sender], daemon=True).start()
        payload = "x" * args.size
        profiler = None
        profile_files: List[str] = []
        if args.profile and shutil.which("py-spy"):
            for _ in pids:
                handle, path = tempfile.mkstemp(suffix=".txt")
                os.close(handle)
                profile_files.append(path)
            profiler = [
                subprocess.Popen(
                    [
                        *("py-spy", "record", "--pid", str(pid), "--format", "raw"),
                        *("--rate", "200", "--duration", str(int(args.timeout)), "-o", path),
                        *("--gil", "--nonblocking"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for pid, path in zip(pids, profile_files)
            ]
            time.sleep(1.0)
        ours.send("go")
        started = time.monotonic()
        for _ in range(args.messages):
            sender.send(payload)
        sent = time.monotonic()
        _, delivered, complete, done_at = ours.recv()
        receivers.join(10)
        sender.close()
        elapsed = (done_at or time.monotonic()) - started
        result.update(
            delivered=delivered,
            expected=args.receivers * args.messages,
            complete=complete,
            seconds=elapsed,
            send_seconds=sent - started,
            rate=delivered / elapsed if elapsed > 0 else 0.0,
        )
        print(
            f"   {delivered}/{args.receivers * args.messages} delivered in {elapsed:.2f} s "
            f"(sending took {sent - started:.2f} s): {result['rate']:,.0f} deliveries/s",
            flush=True,
        )
        if profiler is not None:
            for process in profiler:
                process.send_signal(2)  # py-spy writes its output on SIGINT
            for process, path, pid in zip(profiler, profile_files, pids):
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                with open(path) as profile:
                    summary = profile_summary(profile.read())
                os.unlink(path)
                result.setdefault("profile", []).append((pid, summary))
                print(f"   profile of worker pid {pid}:", flush=True)
                print("\n".join(summary), flush=True)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receivers", type=int, default=500)
    parser.add_argument("--messages", type=int, default=200, help="per receiver")
    parser.add_argument("--size", type=int, default=64, help="bytes per message")
    parser.add_argument("--timeout", type=float, default=60.0, help="per configuration")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    args = parser.parse_args()
    raise_fd_limit(2 * args.receivers + 200)

    redis_binary = shutil.which("redis-server")
    redis_process = None
    configs: List[Tuple[str, Optional[str], int]] = [("local, 1 process", None, 1)]
    if redis_binary:
        redis_port = free_port()
        redis_process = subprocess.Popen(
            [
                *(redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{redis_port}/0"
        configs += [("redis, 1 process", url, 1), ("redis, --workers 2", url, 2)]
    else:
        print("redis-server not found: only the local broker is measured", flush=True)
    results = []
    try:
        for label, broker, workers in configs:
            results.append(run_config(label, broker, workers, args))
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(10)

    print()
    print(
        f"fan-out: 1 sender, {args.receivers} receivers, {args.messages} messages "
        f"of {args.size} bytes, {os.cpu_count()} CPU(s)"
    )
    print(f"| {'configuration':<20} | {'delivered':>15} | {'seconds':>7} | {'deliveries/s':>12} |")
    print(f"| {'-' * 20} | {'-' * 15}:| {'-' * 7}:| {'-' * 12}:|")
    for result in results:
        delivered = f"{result['delivered']}/{result['expected']}"
        print(
            f"| {result['label']:<20} | {delivered:>15} | {result['seconds']:7.2f} "
            f"| {result['rate']:12,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
