"""Timing helpers shared by the benchmark command and its scripts."""

from __future__ import annotations

import ctypes
import os
import time
from typing import Callable, Dict, Tuple


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
    kernel call pays, so small sizes compare call against call; its buffers
    come from :func:`copy_buffers`.
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
            source, target = copy_buffers(size)

            def copy() -> None:
                target[:] = source

            self._rates[size, group] = size / best_time(copy, self.budget)
        return self._rates[size, group]


def _address(buffer: bytearray) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


def copy_buffers(size: int) -> Tuple[memoryview, memoryview]:
    """A source and a target of ``size`` bytes laid out for a fast copy.

    Where the allocator puts the two buffers decides what a copy costs:
    when the target starts a few bytes past a 4 KiB multiple from the
    source (two 64 KiB bytearrays allocated in a row, say), the ``rep
    movsb`` of glibc's memcpy slows down 15x on AMD Zen 3 (measured here:
    2.6 against 35 GB/s). The reference must be the fast copy, so both
    buffers start 64-byte aligned, half a page apart modulo 4 KiB.
    """
    source_block = bytearray(os.urandom(size + 8192))
    target_block = bytearray(size + 8192)
    source_at = -_address(source_block) % 64
    target_at = (_address(source_block) + source_at + 2048 - _address(target_block)) % 4096
    return (
        memoryview(source_block)[source_at : source_at + size],
        memoryview(target_block)[target_at : target_at + size],
    )
