"""Resident memory of this process: now, and its high-water mark."""

from __future__ import annotations

import resource
from pathlib import Path


def rss_mb() -> float:
    """Resident memory of this process, MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb(status: Path = Path("/proc/self/status")) -> float:
    """Peak resident memory of this process so far, MiB: Linux's VmHWM, the high-water
    mark of this program's own memory. ru_maxrss, where /proc has none, survives exec: a
    child started from a large parent reports the parent's peak as its own."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux, bytes on macOS; this path serves systems without /proc.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
