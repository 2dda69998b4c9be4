"""Many connections on one process (issue 27): nothing lost, memory bounded, a newcomer served.

The small version of ``python -m benchmarks connections``, with its own
parts: the server in a process of its own, the clients in two more, bound to
loopback source addresses 127.0.0.2, 127.0.0.3, ... 2,000 connections in
``.ci/full`` (``WSCODEC_HOSTILE_FULL=1``), 400 in the gate. The figures are
the benchmark's; what is asserted here are properties, with wide margins.
"""

from __future__ import annotations

import time

import pytest

from tests.hostile.harness import FULL_SCALE

try:  # the load generator is the benchmark's
    from benchmarks.connections.limits import raise_nofile
    from benchmarks.connections.scale import scale
except ImportError:
    pytest.skip(
        "no benchmarks/ beside tests/ (a wheel's test run copies tests/ alone)",
        allow_module_level=True,
    )

CONNECTIONS = 2000 if FULL_SCALE else 400
#: Far above the 3-10 KiB an idle connection costs these servers (benchmarks/README.md),
#: far below what an unbounded buffer per connection would cost.
MAX_RSS_PER_CONNECTION = 64 * 1024


@pytest.mark.parametrize("kind", ["wscodec-events", "wscodec-asyncio"])
def test_every_connection_held_answered_and_broadcast_to(kind: str) -> None:
    nofile = CONNECTIONS + 1000
    soft, _ = raise_nofile(nofile)
    assert soft >= nofile, f"RLIMIT_NOFILE {soft} cannot hold {CONNECTIONS} connections"
    started = time.monotonic()
    result = scale(kind, [CONNECTIONS // 4, CONNECTIONS], 2, nofile)
    elapsed = time.monotonic() - started
    for step, wanted in zip(result["steps"], [CONNECTIONS // 4, CONNECTIONS]):
        assert step["held"] == step["open"] == wanted, step
        assert step["failed"] == 0, step
        assert step["echoed"] == step["ponged"] == wanted, "a round trip was lost"
        for broadcast in (step["broadcast_one"], step["broadcast_burst"]):
            assert broadcast["complete"] == broadcast["receivers"] == wanted, broadcast
        assert step["latency_p99"] < 1.0, f"a fresh client waited {step['latency_p99']:.2f} s"
    per_connection = result["rss_per_connection"]
    assert 0 < per_connection < MAX_RSS_PER_CONNECTION, f"{per_connection:.0f} B per connection"
    assert elapsed < 60, f"the run took {elapsed:.0f} s"
