"""What a run's measurements run under: the settings each ONNX file is swept over, the
time limit of one measuring unit, and a short stable name for a setting."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from hardware.detect import HostInfo
from hardware.session import SessionSettings
from hardware.targets import Target


def thread_options(
    target: Target, host: HostInfo, counts: tuple[int, ...] | None = None
) -> tuple[SessionSettings, ...]:
    """The settings each ONNX file is measured under: on CPU, the thread counts (`counts`
    when given; else one intra-op thread per physical core, ONNX Runtime's default, and a
    single thread, which wins on small models where waking a thread pool costs more than
    the work it shares), then the first of them at ONNX Runtime's portable graph level.

    The graph level is a session setting rather than a file of its own: the default level
    lays tensors out for this CPU's kernels (NCHWc on AVX-512), which some graphs run
    slower with, and a file saved at a level runs as the export does at that level."""
    if target.is_gpu:
        return (SessionSettings(),)
    counts = counts or tuple(sorted({host.physical_cores, 1}, reverse=True))
    threads = tuple(SessionSettings(intra_op_threads=n) for n in counts)
    return (*threads, SessionSettings(intra_op_threads=counts[0], graph_level="extended"))


# A unit of measurement runs the evaluation set once or twice and times a few loops: a
# model whose pass over the set took the original this long gets this many times that.
REFERENCE_MULTIPLE = 40


def unit_time_limit(configured_s: float, reference_s: float) -> float:
    """The time limit of one measurement unit: the configured one, or more for a model so
    slow that a pass over the evaluation set takes a sizeable share of it."""
    return max(configured_s, REFERENCE_MULTIPLE * reference_s)


def settings_digest(settings: Any) -> str:
    """A short stable name for a settings dataclass, for cache file names."""
    plain = json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str)
    return hashlib.sha256(plain.encode()).hexdigest()[:12]
