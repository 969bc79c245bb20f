"""Where a model's time goes: ONNX Runtime's or PyTorch's profiler, summed per operator
type."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from hardware.session import SessionSettings, open_session
from hardware.targets import Target

# A profile's runs stop after this many seconds, once they are at least FEWEST_RUNS: each
# node's median over a dozen runs already ranks the operators; a profiled run of a large
# model takes tens of milliseconds, and the trace of fifty of them seconds to read. On
# all-MiniLM-L6-v2's export, 0.3 s gave the ranking and shares of 1.0 s (within 0.01) in
# 0.53 s instead of 1.55 s.
PROFILE_SECONDS = 0.3
FEWEST_RUNS = 12


def operator_profile(
    model_path: Path,
    target: Target,
    feeds: dict[str, np.ndarray],
    settings: SessionSettings = SessionSettings(),
    runs: int = 50,
    top: int = 10,
    seconds: float = PROFILE_SECONDS,
) -> list[dict[str, object]]:
    """The `top` operator types by kernel time over `runs` runs, fewer where they would
    take more than `seconds` but at least FEWEST_RUNS (after one warm-up run that the
    profile leaves out; each node counted at its median time), with their share of all
    kernel time and call count."""
    with tempfile.TemporaryDirectory() as scratch:
        session = open_session(
            model_path, target, settings, profile_prefix=Path(scratch) / "ort_profile"
        )
        names = [i.name for i in session.get_inputs()]
        bound = {n: feeds[n] for n in names}
        session.run(None, bound)
        warmup_end_us = _trace_now_us(session)
        deadline = time.perf_counter() + seconds
        done = 0
        while done < runs and (done < FEWEST_RUNS or time.perf_counter() < deadline):
            session.run(None, bound)
            done += 1
        runs = done
        trace = json.loads(Path(session.end_profiling()).read_text())
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_provider: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for event in trace:
        args = event.get("args", {})
        if event.get("cat") != "Node" or "op_name" not in args:
            continue
        if not event.get("name", "").endswith("_kernel_time") or event["ts"] < warmup_end_us:
            continue
        durations[(args["op_name"], event["name"])].append(event["dur"] / 1e3)
        by_provider[args["op_name"]][args.get("provider", "")] += event["dur"]
    # Each node's median time, not its mean: one preempted run of a tiny op would otherwise
    # outweigh the rest of it.
    totals: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for (op, _), times in durations.items():
        totals[op] += statistics.median(times) * len(times)
        calls[op] += len(times)
    ranked = ranked_operators(totals, calls, runs, top)
    for row in ranked:
        # An op type can run on two providers (GPU, and CPU for what the GPU lacks).
        times = by_provider[row["op_type"]]
        row["provider"] = max(times, key=times.get)
    return ranked


def ranked_operators(
    totals: dict[str, float], calls: dict[str, int], runs: int, top: int
) -> list[dict[str, object]]:
    """The `top` operators by total time (ms over `runs` runs), with their share of all
    operator time and their calls per run."""
    overall = sum(totals.values()) or 1.0
    ranked = sorted(totals, key=totals.get, reverse=True)[:top]
    return [
        {
            "op_type": op,
            "total_ms": round(totals[op], 4),
            "per_run_ms": round(totals[op] / runs, 4),
            "share": round(totals[op] / overall, 4),
            "calls_per_run": calls[op] / runs,
        }
        for op in ranked
    ]


def _trace_now_us(session) -> float:
    """Microseconds since the profile started, as the trace's timestamps count them."""
    import time

    return (time.time_ns() - session.get_profiling_start_time_ns()) / 1e3
