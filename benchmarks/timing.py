"""Timing helpers shared by the benchmark command and its scripts."""

from __future__ import annotations

import os
import time
from typing import Callable, Dict


def best_time(function: Callable[[], object], budget: float) -> float:
    """Seconds per call: the best of 5 repeats, each calibrated to ~budget/5.

    The best (not the mean) of several repeats is the figure least disturbed
    by other processes on a shared machine.
    """
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            function()
        elapsed = time.perf_counter() - start
        if elapsed > budget / 50 or loops > 1 << 24:
            break
        loops *= 4
    loops = max(1, int(loops * (budget / 5) / max(elapsed, 1e-9)))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            function()
        best = min(best, (time.perf_counter() - start) / loops)
    return best


class Memcpy:
    """memcpy throughput (bytes/s) by size, measured once per size per run.

    The reference is ``memoryview[:] = source``: one C memcpy of the same
    number of bytes, reached through the same Python call overhead that every
    kernel call pays, so small sizes compare call against call.
    """

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self._rates: Dict[object, float] = {}

    def rate(self, size: int, group: object = None) -> float:
        """Bytes/s copying ``size`` bytes, timed once per ``group``.

        Re-timing memcpy for each group of rows (rather than once per size)
        keeps each ratio's two sides close in time, so a change in the load
        of a shared machine during the run skews fewer ratios.
        """
        if (size, group) not in self._rates:
            source = os.urandom(size)
            target = memoryview(bytearray(size))

            def copy() -> None:
                target[:] = source

            self._rates[size, group] = size / best_time(copy, self.budget)
        return self._rates[size, group]
