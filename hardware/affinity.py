"""Pinning a measuring process to one logical CPU per physical core, where the OS allows."""

from __future__ import annotations

import os
from pathlib import Path

TOPOLOGY = Path("/sys/devices/system/cpu")


def one_per_core(allowed: list[int]) -> list[int]:
    """The first logical CPU of each physical core among `allowed`: two threads of one
    measurement on SMT siblings would share a core's units and slow each other."""
    chosen, seen = [], set()
    for cpu in sorted(allowed):
        siblings = TOPOLOGY / f"cpu{cpu}" / "topology" / "thread_siblings_list"
        core = siblings.read_text().strip() if siblings.is_file() else str(cpu)
        if core not in seen:
            seen.add(core)
            chosen.append(cpu)
    return chosen


def pin_measuring_process() -> list[int] | None:
    """Pin this process to one logical CPU per physical core it may use, so the scheduler
    cannot move timed threads onto busy or sibling CPUs; returns the CPUs, or None where the
    OS offers no affinity control (macOS, Windows)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    chosen = one_per_core(list(os.sched_getaffinity(0)))
    os.sched_setaffinity(0, chosen)
    return chosen
