"""Idle scale and broadcast, for one server: the steps of ``python -m benchmarks connections``."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Sequence

from .children import Child, echo_latencies, percentile
from .server import NO_DEFLATE

#: Bytes of each broadcast message, and how many go out for the rate.
BROADCAST_SIZE = 64
BROADCAST_BURST = 10


def sources(process: int, per_process: int) -> str:
    """Loopback source addresses of one client process: 5,000 connections each at most."""
    count = max(1, -(-per_process // 5000))
    first = process * count
    return ",".join(f"127.0.{(first + i) // 250}.{2 + (first + i) % 250}" for i in range(count))


class Run:
    """One server process and its client processes."""

    def __init__(
        self, kind: str, compression: str, total: int, processes: int, nofile: int, trace=False
    ) -> None:
        flags = ["--trace"] if trace else []
        server = "benchmarks.connections.server"
        self.server = Child(server, kind, compression, *flags, nofile=nofile)
        self.port = int(self.server.line(60).split()[1])
        deflate = ["--deflate"] if compression == "on" else []
        per = -(-total // processes)
        self.clients = [
            Child(
                "benchmarks.connections.clients",
                str(self.port),
                sources(p, per),
                *deflate,
                nofile=nofile,
            )
            for p in range(processes)
        ]

    def all(self, line: str, timeout: float = 180.0) -> List[Dict[str, Any]]:
        for client in self.clients:
            client.send(line)
        return [client.answer(timeout) for client in self.clients]

    def open(self, total: int) -> Dict[str, Any]:
        """Open connections up to ``total`` (spread over the processes), then two round trips."""
        processes = len(self.clients)
        share = [total // processes + (i < total % processes) for i in range(processes)]
        for client, count in zip(self.clients, share):
            client.send(f"open {count}")
        opened = [client.answer(180) for client in self.clients]
        trips = [self.all("roundtrip") for _ in range(2)]
        return {
            "open": sum(r["open"] for r in opened),
            "failed": sum(r["failed"] for r in opened),
            "open_seconds": max(r["seconds"] for r in opened),
            "echoed": min(sum(r["echoed"] for r in t) for t in trips),
            "ponged": min(sum(r["ponged"] for r in t) for t in trips),
        }

    def broadcast(self, count: int, timeout: float = 60.0) -> Dict[str, Any]:
        """``count`` messages to every connection: until the last receiver has the last."""
        armed = self.all(f"expect {count} {BROADCAST_SIZE} {timeout}")
        receivers = sum(r["armed"] for r in armed)
        sent = self.server.ask(f"broadcast {BROADCAST_SIZE} {count}", timeout)
        results = [client.answer(timeout + 10) for client in self.clients]
        complete = sum(r["complete"] for r in results)
        lasts = [r["last"] for r in results if r["last"] is not None]
        seconds = (max(lasts) - sent["started"]) if lasts else float("nan")
        return {
            "receivers": receivers,
            "complete": complete,
            "messages": count,
            "seconds_to_last": seconds,
            "call_seconds": sent["returned"] - sent["started"],
            "deliveries_per_s": complete * count / seconds if lasts else 0.0,
        }

    def stop(self) -> None:
        for client in self.clients:
            client.send("close")
        for child in [*self.clients, self.server]:
            child.stop()


def _median_of(run: Run, count: int, times: int = 3) -> Dict[str, Any]:
    """The median of ``times`` broadcasts of ``count`` messages (the machine is shared:
    one run can land on another tenant's burst); ``complete`` is the worst run's."""
    results = sorted((run.broadcast(count) for _ in range(times)), key=_seconds)
    middle = dict(results[len(results) // 2])
    middle["complete"] = min(r["complete"] for r in results)
    middle["runs_seconds_to_last"] = [r["seconds_to_last"] for r in results]
    return middle


def _seconds(result: Dict[str, Any]) -> float:
    return float(result["seconds_to_last"])


def scale(
    kind: str, steps: Sequence[int], processes: int, nofile: int, broadcast: bool = True
) -> Dict[str, Any]:
    """Open ``steps`` connections in turn; at each, two round trips, memory, a fresh
    client's latency and (uncompressed) broadcasts. RSS per connection is the growth
    from the first step to the last."""
    run = Run(kind, "off", steps[-1], processes, nofile)
    result: Dict[str, Any] = {"kind": kind, "steps": [], "open_seconds": 0.0}
    try:
        for step in steps:
            opened = run.open(step)
            result["open_seconds"] += opened["open_seconds"]
            memory = run.server.ask("measure")
            latencies = echo_latencies(run.port)
            row: Dict[str, Any] = {**opened, **memory}
            row["latency_p50"] = percentile(latencies, 0.5)
            row["latency_p99"] = percentile(latencies, 0.99)
            if broadcast:
                row["broadcast_one"] = _median_of(run, 1)
                row["broadcast_burst"] = _median_of(run, BROADCAST_BURST)
            result["steps"].append(row)
            if opened["open"] < step:
                break  # the server (or the machine) holds no more: this is its ceiling
    finally:
        run.stop()
    first, last = result["steps"][0], result["steps"][-1]
    grown = last["held"] - first["held"]
    result["rss_per_connection"] = (last["rss"] - first["rss"]) / grown if grown > 0 else None
    return result


def memory(kind: str, compression: str, steps: Sequence[int], nofile: int) -> Dict[str, Any]:
    """Per connection: tracemalloc growth between the two steps (two round trips each)."""
    if compression == "on" and kind in NO_DEFLATE:
        return {"kind": kind, "traced_per_connection": None}
    run = Run(kind, compression, steps[-1], 1, nofile, trace=True)
    try:
        rows = []
        for step in steps:
            run.open(step)
            time.sleep(0.2)
            rows.append(run.server.ask("measure"))
    finally:
        run.stop()
    grown = rows[-1]["held"] - rows[0]["held"]
    traced = (rows[-1]["traced"] - rows[0]["traced"]) / grown if grown else None
    return {"kind": kind, "compression": compression, "traced_per_connection": traced}


def rss_compressed(kind: str, steps: Sequence[int], processes: int, nofile: int) -> Dict[str, Any]:
    """RSS per idle connection with permessage-deflate agreed (two compressed round trips)."""
    if kind in NO_DEFLATE:
        return {"kind": kind, "rss_per_connection": None}
    run = Run(kind, "on", steps[-1], processes, nofile)
    try:
        rows = []
        for step in steps:
            opened = run.open(step)
            rows.append({**opened, **run.server.ask("measure")})
    finally:
        run.stop()
    grown = rows[-1]["held"] - rows[0]["held"]
    return {
        "kind": kind,
        "rows": rows,
        "rss_per_connection": (rows[-1]["rss"] - rows[0]["rss"]) / grown if grown else None,
    }
