"""Whether a figure was taken on a quiet machine: the share of the cores that other
processes used while it was timed, read from /proc/stat less this process's own time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Others may use this share of the cores while a figure is timed and it still counts as
# taken on a quiet machine: a busy neighbour inflates runtimes unevenly (ONNX Runtime's
# thread pool far more than OpenVINO's), so a figure taken beside one ranks nothing.
BUSY_SHARE = 0.10
# Takes of one figure at most, the first included, before it is kept and flagged.
TAKES = 3
# /proc/stat and a process's own times count in clock ticks (100 a second): a window of
# fewer ticks over all cores than this reads a few ticks of rounding as a busy machine.
MIN_TICKS = 40


def _busy_seconds() -> float | None:
    """CPU seconds every process on the machine has used so far (user, nice, system,
    interrupts, steal; idle and iowait aside), or None where /proc/stat is unreadable."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields]
    # user nice system idle iowait irq softirq steal: guest time is inside user already.
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds this process (every thread) and its children have used so far."""
    import psutil

    process = psutil.Process()
    times = [process.cpu_times()]
    for child in process.children(recursive=True):
        try:
            times.append(child.cpu_times())
        except psutil.Error:  # a child that ended meanwhile used nothing more
            continue
    return sum(t.user + t.system for t in times)


class LoadWatch:
    """Measures, over a `with` block, the share of all cores that processes other than this
    one (and its children) kept busy; `share` is None where the OS does not say, or the
    block was too short to tell."""

    def __enter__(self) -> LoadWatch:
        self.share: float | None = None
        self._busy, self._own = _busy_seconds(), _own_seconds()
        self._start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        busy = _busy_seconds()
        if busy is None or self._busy is None:
            return
        wall = time.monotonic() - self._start
        cores = os.cpu_count() or 1
        if wall * cores * os.sysconf("SC_CLK_TCK") < MIN_TICKS:
            return
        others = (busy - self._busy) - (_own_seconds() - self._own)
        self.share = max(0.0, others / (wall * cores))


def on_a_quiet_machine(take: Callable[[], T], takes: int = TAKES) -> tuple[T, float | None, int]:
    """`take()` timed while watching the machine: taken again, up to `takes` times in all,
    while other processes used more than BUSY_SHARE of the cores. Returns the quietest
    take, the share others used during it, and how many times it was re-taken."""
    best: tuple[T, float | None] | None = None
    for attempt in range(takes):
        with LoadWatch() as watch:
            result = take()
        share = watch.share
        if best is None or (share is not None and (best[1] is None or share < best[1])):
            best = (result, share)
        if share is None or share <= BUSY_SHARE:
            return result, share, attempt
    return best[0], best[1], takes - 1
