"""Drive Autobahn's fuzzingserver with the wscodec client (the client role).

    python tests/autobahn/client_driver.py ws://127.0.0.1:9001 AGENT [asyncio]

Asks the server how many cases it has, runs each one as an echo client (every
message received is sent back), then asks it to write its reports. With
``asyncio`` the cases run on :mod:`wscodec.asyncio`'s client instead of the
sync one.
"""

from __future__ import annotations

import asyncio
import sys
import time

from wscodec import ConnectionClosed, WebSocketError, connect

# Group 9 sends messages of up to 16 MiB; leave room.
MAX_SIZE = 64 * 2**20
# The client's options in every case, for both client flavours.
CASE_OPTIONS = dict(
    max_size=MAX_SIZE, open_timeout=30, close_timeout=5, ping_interval=None, max_queue=64
)


def run_case(base: str, position: int, agent: str) -> None:
    uri = f"{base}/runCase?case={position}&agent={agent}"
    try:
        with connect(uri, **CASE_OPTIONS) as connection:  # type: ignore[arg-type]
            for message in connection:
                connection.send(message)
    except ConnectionClosed:
        pass  # the case ended the connection: its verdict is in the report
    except (OSError, WebSocketError) as error:
        print(f"case {position}: {type(error).__name__}: {error}", file=sys.stderr)


async def run_case_asyncio(base: str, position: int, agent: str) -> None:
    from wscodec.asyncio import connect as connect_asyncio

    uri = f"{base}/runCase?case={position}&agent={agent}"
    try:
        async with connect_asyncio(uri, **CASE_OPTIONS) as connection:  # type: ignore[arg-type]
            async for message in connection:
                await connection.send(message)
    except ConnectionClosed:
        pass
    except (OSError, WebSocketError) as error:
        print(f"case {position}: {type(error).__name__}: {error}", file=sys.stderr)


def main() -> int:
    base, agent = sys.argv[1], sys.argv[2]
    on_asyncio = sys.argv[3:] == ["asyncio"]
    with connect(f"{base}/getCaseCount", compression=None) as connection:
        count = int(connection.recv(timeout=30))
    print(f"{count} cases", flush=True)
    started = time.monotonic()
    for position in range(1, count + 1):
        if on_asyncio:
            asyncio.run(run_case_asyncio(base, position, agent))
        else:
            run_case(base, position, agent)
        if position % 25 == 0 or position == count:
            elapsed = time.monotonic() - started
            print(f"  {position}/{count} cases, {elapsed:.0f} s", flush=True)
    with connect(
        f"{base}/updateReports?agent={agent}", compression=None, open_timeout=60, close_timeout=60
    ) as connection:
        try:
            connection.recv(timeout=120)
        except (ConnectionClosed, TimeoutError):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
