"""The tables of ``python -m benchmarks connections``, in Markdown, with ratios to the peers."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

OURS = ("wscodec-events", "wscodec-asyncio")
PEERS = ("websockets", "aiohttp", "picows")


def _kib(value: Optional[float]) -> str:
    return "-" if value is None else f"{value / 1024:.1f}"


def _ms(value: Optional[float]) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 1000:.1f}"


def _ratio(ours: Optional[float], theirs: Optional[float]) -> str:
    if ours is None or theirs is None or not theirs or math.isnan(ours) or math.isnan(theirs):
        return "-"
    return f"{ours / theirs:.2f}x"


def _table(header: List[str], rows: List[List[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def _ratios(title: str, figures: Dict[str, Optional[float]], better: str) -> None:
    """Each of ours against each peer present: ``ours / peer`` (``better``: lower or higher)."""
    parts = []
    for ours in OURS:
        for peer in PEERS:
            if ours in figures and peer in figures:
                parts.append(f"{ours}/{peer} {_ratio(figures[ours], figures[peer])}")
    if parts:
        print(f"- {title} ({better} is better): " + "; ".join(parts))


def print_report(results: Dict[str, Any]) -> None:
    for note in results.get("notes", []):
        print(f"note: {note}")
    idle = results.get("idle", {})
    memory = results.get("memory", {})
    if idle:
        print(f"\n### Idle scale, compression off ({results['connections']} connections)\n")
        rows = []
        for kind, r in idle.items():
            if "error" in r:
                rows.append([kind, r["error"]] + [""] * 6)
                continue
            last = r["steps"][-1]
            rows.append(
                [
                    kind,
                    f"{last['held']} ({last['echoed']} echoed, {last['ponged']} ponged)",
                    f"{r['open_seconds']:.1f}",
                    _kib(r["rss_per_connection"]),
                    _kib(memory.get(kind, {}).get("traced_off", {}).get("traced_per_connection")),
                    _kib(memory.get(kind, {}).get("rss_on", {}).get("rss_per_connection")),
                    _kib(memory.get(kind, {}).get("traced_on", {}).get("traced_per_connection")),
                    f"{_ms(last['latency_p50'])} / {_ms(last['latency_p99'])}",
                ]
            )
        _table(
            [
                "server",
                "held (2 round trips + ping)",
                "open all (s)",
                "RSS/conn KiB",
                "traced/conn KiB",
                "RSS/conn KiB, deflate",
                "traced/conn KiB, deflate",
                "fresh client echo p50 / p99 (ms)",
            ],
            rows,
        )
        ok = {k: r for k, r in idle.items() if "error" not in r}
        _ratios("RSS per connection", {k: r["rss_per_connection"] for k, r in ok.items()}, "lower")
        labels = (("traced_off", "traced per connection"), ("traced_on", "traced, deflate"))
        for key, label in labels:
            figures = {k: m.get(key, {}).get("traced_per_connection") for k, m in memory.items()}
            _ratios(label, figures, "lower")
        figures = {k: m.get("rss_on", {}).get("rss_per_connection") for k, m in memory.items()}
        _ratios("RSS per connection, deflate", figures, "lower")
        _ratios("time to open all", {k: r["open_seconds"] for k, r in ok.items()}, "lower")
        _ratios(
            "fresh client's p99", {k: r["steps"][-1]["latency_p99"] for k, r in ok.items()}, "lower"
        )
        print("\n### Broadcast, 64-byte messages\n")
        rows = []
        for kind, r in ok.items():
            for step in r["steps"]:
                one, burst = step["broadcast_one"], step["broadcast_burst"]
                rows.append(
                    [
                        kind,
                        str(one["receivers"]),
                        f"{one['complete']}/{one['receivers']}",
                        _ms(one["seconds_to_last"]),
                        f"{burst['complete']}/{burst['receivers']}",
                        f"{burst['deliveries_per_s']:,.0f}",
                    ]
                )
        _table(
            [
                "server",
                "receivers",
                "1 message: got it",
                "until the last has it (ms, median of 3)",
                "10 messages: got all",
                "deliveries/s (median of 3)",
            ],
            rows,
        )
        counts = sorted({s["held"] for r in ok.values() for s in r["steps"]})
        for count in counts:
            rates = {
                k: s["broadcast_burst"]["deliveries_per_s"]
                for k, r in ok.items()
                for s in r["steps"]
                if s["held"] == count
            }
            lasts = {
                k: s["broadcast_one"]["seconds_to_last"]
                for k, r in ok.items()
                for s in r["steps"]
                if s["held"] == count
            }
            _ratios(f"{count} receivers, deliveries/s", rates, "higher")
            _ratios(f"{count} receivers, time to the last", lasts, "lower")
    threaded = results.get("threaded")
    if threaded:
        print("\n### The threaded server (a thread per connection)\n")
        if "error" in threaded:
            print(threaded["error"])
        else:
            rows = [
                [
                    str(s["held"]),
                    str(s["threads"]),
                    f"{s['rss'] / 2**20:.0f}",
                    f"{_ms(s['latency_p50'])} / {_ms(s['latency_p99'])}",
                    _ms(s["broadcast_one"]["seconds_to_last"]),
                ]
                for s in threaded["steps"]
            ]
            _table(
                ["held", "threads", "RSS MiB", "fresh echo p50 / p99 (ms)", "broadcast (ms)"],
                rows,
            )
            print(f"RSS per connection: {_kib(threaded['rss_per_connection'])} KiB\n")
    for chat in results.get("chat", []):
        if "error" in chat:
            print(f"chat: {chat['error']}")
            continue
        print(
            f"- chat on the {chat.get('server', 'threaded')} server, {chat['members']} members "
            f"at {chat['rate']}/s: {chat['joined']} joined, "
            f"{chat['flood']['closed']} closed; observer p50 {_ms(chat['observer_p50'])} ms, "
            f"p90 {_ms(chat['observer_p90'])} ms, "
            f"p99 {_ms(chat['observer_p99'])} ms, max {_ms(chat['observer_max'])} ms "
            f"({chat['published']} published, {chat['busy']} busy, {chat['unanswered']} "
            f"unanswered); server RSS {chat['rss_start'] / 2**20:.0f} -> peak "
            f"{chat['rss_peak'] / 2**20:.0f} MiB, threads peak {chat['threads_peak']}"
        )
