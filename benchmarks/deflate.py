"""Compressed echo over loopback, wscodec against websockets, on chat-like JSON.

    python benchmarks/deflate.py [--seconds 2] [--messages 2000]

For each library, its own sync client talks to its own threaded server with
permessage-deflate negotiated by default; the client sends chat-like JSON
messages and waits for each echo (lock-step), for a bounded time. The table
shows round trips per second and the compression ratio each library's
compressor reaches on the same message stream (raw bytes / compressed bytes,
with the parameters its defaults negotiate). Both run in this one process, in
the same run, so the ratio between them is what to read.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from typing import Any, Callable, List, Tuple

import wscodec
from wscodec.deflate import DeflateOptions, accept_offers, accept_response, client_offer


def chat_corpus(count: int) -> List[str]:
    rng = random.Random(7)
    words = (
        "hello there how are you doing today the build is green again "
        "see you at the meeting lunch soon thanks great idea ship it"
    ).split()
    return [
        json.dumps(
            {
                "type": "message",
                "room": "lobby",
                "nick": f"user{rng.randrange(40)}",
                "time": 1764000000 + n,
                "text": " ".join(rng.choice(words) for _ in range(rng.randrange(3, 20))),
            }
        )
        for n in range(count)
    ]


def lockstep(
    send: Callable[[str], Any], recv: Callable[[], Any], messages: List[str], seconds: float
) -> float:
    """Round trips per second, sending the corpus in a loop until time is up."""
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for message in messages[:100]:
            send(message)
            recv()
        done += 100
        messages = messages[100:] + messages[:100]
    return done / (time.perf_counter() - started)


def wscodec_run(messages: List[str], seconds: float) -> Tuple[float, float]:
    def echo(connection: Any) -> None:
        for message in connection:
            connection.send(message)

    server = wscodec.serve(echo, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with wscodec.connect(f"ws://127.0.0.1:{server.port}/") as client:
            assert client.protocol.deflate is not None, "deflate was not negotiated"
            rate = lockstep(client.send, client.recv, messages, seconds)
    finally:
        server.shutdown()
    response, _ = accept_offers([client_offer(DeflateOptions())], DeflateOptions())
    client_side = accept_response([response], DeflateOptions())
    assert client_side is not None
    raw = sum(len(m.encode()) for m in messages)
    compressed = sum(len(client_side.compress(m.encode())) for m in messages)
    return rate, raw / compressed


def websockets_run(messages: List[str], seconds: float) -> Tuple[float, float]:
    from websockets.frames import Frame, Opcode
    from websockets.sync.client import connect
    from websockets.sync.server import serve

    def echo(connection: Any) -> None:
        for message in connection:
            connection.send(message)

    server = serve(echo, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.socket.getsockname()[1]
        with connect(f"ws://127.0.0.1:{port}/") as client:
            negotiated = client.response.headers.get("Sec-WebSocket-Extensions", "")
            assert "permessage-deflate" in negotiated, "deflate was not negotiated"
            rate = lockstep(client.send, client.recv, messages, seconds)
            extension = next(
                e for e in client.protocol.extensions if e.name == "permessage-deflate"
            )
    finally:
        server.shutdown()
    raw = compressed = 0
    for message in messages:
        data = message.encode()
        raw += len(data)
        compressed += len(extension.encode(Frame(Opcode.TEXT, data)).data)
    return rate, raw / compressed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="echo time per library")
    parser.add_argument("--messages", type=int, default=2000, help="messages in the corpus")
    args = parser.parse_args()
    messages = chat_corpus(args.messages)
    average = sum(len(m) for m in messages) / len(messages)
    print(
        f"chat-like JSON, {len(messages)} messages of {average:.0f} B on average; "
        f"wscodec backend: {wscodec.BACKEND}"
    )
    rows = [("wscodec", wscodec_run)]
    try:
        import websockets  # noqa: F401

        rows.append(("websockets", websockets_run))
    except ImportError:
        print("websockets is not installed: wscodec alone", file=sys.stderr)
    results = {}
    for name, run in rows:
        print(f"  running {name} for {args.seconds:.0f} s...", file=sys.stderr, flush=True)
        results[name] = run(messages, args.seconds)
    print(f"{'library':12} {'round trips/s':>14} {'ratio vs websockets':>20} {'compression':>12}")
    reference = results.get("websockets", results["wscodec"])[0]
    for name, (rate, ratio) in results.items():
        print(f"{name:12} {rate:14.0f} {rate / reference:19.2f}x {ratio:11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
