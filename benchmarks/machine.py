"""What a report says about the machine it ran on: Python, platform, CPU and kernels."""

from __future__ import annotations

import platform
import sys
from typing import Any, Dict

from wscodec import _backend


def machine() -> Dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    compiled = _backend.compiled_codec
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "kernels": dict(compiled.KERNELS) if compiled is not None else None,
        "nogil_thresholds": dict(compiled.NOGIL_THRESHOLDS) if compiled is not None else None,
    }
