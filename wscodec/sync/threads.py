"""Starting the threads that run only wscodec's code, with a small stack."""

from __future__ import annotations

import threading

__all__ = ["LIBRARY_THREAD_STACK", "start_library_thread"]

#: The stack size of the threads that run wscodec's code only (a connection's
#: background reader, its pinger, a send_nowait() drain), in bytes. They need
#: a few tens of KiB; the system default (8 MiB on Linux) is address space
#: that counts against RLIMIT_AS and a strict overcommit policy, and memory
#: kept once touched. Threads that run the application's code (a server's
#: connection threads) keep the default: measured on CPython 3.9 to 3.13,
#: recursion up to the default limit through C code (``json``, ``repr``,
#: ``sorted(key=...)``) needs more than 2 MiB, and crashes instead of raising
#: RecursionError in a smaller stack.
LIBRARY_THREAD_STACK = 512 * 1024
_stack_size_lock = threading.Lock()


def start_library_thread(thread: threading.Thread) -> None:
    """Start ``thread`` with a stack of :data:`LIBRARY_THREAD_STACK` bytes.

    ``threading.stack_size()`` is process-wide: it is set for this one start
    and set back right after, under a lock that wscodec's own starts share.
    A thread that other code starts at that very moment may get the small
    stack too, or the one set after it; none of wscodec's threads recurses.
    Raises :class:`RuntimeError` when the thread cannot be started.
    """
    with _stack_size_lock:
        try:
            previous = threading.stack_size(LIBRARY_THREAD_STACK)
        except (ValueError, RuntimeError):  # a platform that cannot change it
            thread.start()
            return
        try:
            thread.start()
        finally:
            threading.stack_size(previous)
