"""Overload: the chat demo with many members each sending at the demo's allowed rate.

    python -m benchmarks.connections.chat MEMBERS [asyncio|threaded]
    python -m benchmarks.connections.chat --serve MAX_CONNECTIONS SERVER   (the server side)

The demo (:func:`wscodec.demo.serve_demo`, on its asyncio server, the
default, or its threaded one) runs in a process of its own with
``max_connections`` raised to admit every member; the
members are ``tests/hostile/chat_flood.py`` (raw sockets in one process, 16
per source address as the demo admits, each sending ``ChatLimits.rate``
messages a second and reading everything). Meanwhile a fresh member (the
observer, wscodec's sync client) says something every 0.3 s and times until
the room answers: its own message broadcast back, or a ``busy`` notice once
the room is at its delivery budget. The server's RSS and threads are sampled
throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from .children import _ROOT, Child, percentile
from .limits import raise_nofile, rss, thread_count

FLOOD_SCRIPT = os.path.join(_ROOT, "tests", "hostile", "chat_flood.py")


def serve(max_connections: int, kind: str) -> int:
    from wscodec.demo import serve_demo

    raise_nofile(max_connections + 256)
    server = serve_demo("127.0.0.1", 0, server=kind, max_connections=max_connections, backlog=1024)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.port}", flush=True)
    for line in sys.stdin:
        if line.split()[:1] != ["measure"]:
            break
        print(json.dumps({"rss": rss(), "threads": thread_count()}), flush=True)
    server.shutdown()
    return 0


def _answer_time(client: Any, text: str, timeout: float) -> Optional[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            event = json.loads(client.recv(timeout=left))
        except TimeoutError:
            return None
        if event.get("type") == "busy":
            return "busy"
        if event.get("type") == "message" and event.get("text") == text:
            return "message"


def overload(
    members: int, nofile: int, server_kind: str = "asyncio", says: int = 40
) -> Dict[str, Any]:
    from wscodec import connect
    from wscodec.demo import ChatLimits

    rate = ChatLimits().rate
    server = Child(
        "benchmarks.connections.chat", "--serve", str(members + 64), server_kind, nofile=nofile
    )
    port = int(server.line(60).split()[1])
    pid = server.process.pid
    samples: List[Dict[str, int]] = [{"rss": rss(pid), "threads": thread_count(pid)}]
    flood = subprocess.Popen(
        [
            "nice",
            "-n",
            "5",
            sys.executable,
            FLOOD_SCRIPT,
            str(port),
            str(members),
            str(rate),
            str(4.0 + says * 0.35),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=_ROOT,
    )
    result: Dict[str, Any] = {"members": members, "rate": rate, "server": server_kind}
    try:
        assert flood.stdout is not None
        result["joined"] = json.loads(flood.stdout.readline())["members"]
        time.sleep(2.0)  # the flood reaches its steady rate
        latencies: List[float] = []
        answers: List[Optional[str]] = []
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as client:
            client.send(json.dumps({"type": "join", "name": "observer"}))
            for index in range(says):
                text = f"observer {index}"
                started = time.monotonic()
                client.send(json.dumps({"type": "message", "text": text}))
                answer = _answer_time(client, text, 5.0)
                latencies.append(time.monotonic() - started if answer else float("inf"))
                answers.append(answer)
                samples.append({"rss": rss(pid), "threads": thread_count(pid)})
                time.sleep(max(0.0, 0.3 - (time.monotonic() - started)))
        result["flood"] = json.loads(flood.stdout.readline())
    finally:
        flood.kill()
        flood.wait()
        server.stop()
    latencies.sort()
    result.update(
        observer_p50=percentile(latencies, 0.5),
        observer_p90=percentile(latencies, 0.9),
        observer_p99=percentile(latencies, 0.99),
        observer_max=latencies[-1],
        published=answers.count("message"),
        busy=answers.count("busy"),
        unanswered=answers.count(None),
        rss_start=samples[0]["rss"],
        rss_peak=max(s["rss"] for s in samples),
        threads_peak=max(s["threads"] for s in samples),
    )
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(serve(int(sys.argv[2]), sys.argv[3]))
    kind = sys.argv[2] if len(sys.argv) > 2 else "asyncio"
    print(json.dumps(overload(int(sys.argv[1]), 4096, kind), indent=1))
