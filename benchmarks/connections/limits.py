"""Process limits and measurements shared by the parts of the connections benchmark."""

from __future__ import annotations

import os
import resource
from typing import Tuple


def raise_nofile(needed: int) -> Tuple[int, int]:
    """Raise RLIMIT_NOFILE to ``needed`` if allowed (the hard limit too, with the
    privilege to); the (soft, hard) limits in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft, hard
    if hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed, needed
        except (ValueError, OSError):
            pass  # unprivileged: the hard limit is as far as we go
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss(pid: int = 0) -> int:
    """Resident memory of ``pid`` (this process by default), in bytes."""
    with open(f"/proc/{pid or 'self'}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def thread_count(pid: int = 0) -> int:
    with open(f"/proc/{pid or 'self'}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0
