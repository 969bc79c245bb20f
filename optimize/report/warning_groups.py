"""A run's warnings grouped by kind, so a report shows a few headings with counts instead of
a wall of lines."""

from __future__ import annotations

import re

# (kind, pattern): the first kind whose pattern a warning matches; the rest are "other".
KINDS = (
    ("slower after lowering precision", re.compile(r"slower than .*(conversions|half-precision)")),
    ("noisy latency", re.compile(r"^noisy latency")),
    ("busy machine", re.compile(r"^other processes kept the CPU busy")),
    ("evaluation and calibration data", re.compile(r"generated inputs|calibrated on|evaluation")),
    ("time budget", re.compile(r"budget|not timed in full|time limit")),
    ("export", re.compile(r"EXPORT PARITY")),
)
OTHER = "other"


def warning_kind(warning: str) -> str:
    """The kind of one warning, by what it says."""
    return next((kind for kind, pattern in KINDS if pattern.search(warning)), OTHER)


def group_warnings(warnings: list[str]) -> list[tuple[str, list[str]]]:
    """The warnings by kind, in the order their kinds first appear."""
    groups: dict[str, list[str]] = {}
    for warning in warnings:
        groups.setdefault(warning_kind(warning), []).append(warning)
    return list(groups.items())
