"""PyTorch's operator profile: where an opened model spends its time, per aten operator."""

from __future__ import annotations

import numpy as np

from hardware.op_profile import ranked_operators
from hardware.runtimes.base import OpenedModel
from hardware.targets import Target


def torch_operator_profile(
    opened: OpenedModel,
    target: Target,
    feeds: dict[str, np.ndarray],
    runs: int = 20,
    top: int = 10,
) -> list[dict[str, object]]:
    """The `top` PyTorch operators by self time over `runs` runs after warm-up (a compiled
    model's kernels show as the aten ops they call), with share and calls per run."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    run, _ = opened.bind(feeds)
    for _ in range(2):  # binding ran it once: three warm-up runs in all
        run()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if target.is_gpu else [])
    with profile(activities=activities) as trace:
        for _ in range(runs):
            run()
        if target.is_gpu:
            torch.cuda.synchronize()
    totals, calls = {}, {}
    for event in trace.key_averages():
        # Device time where the op ran on the GPU, else its own CPU time.
        us = getattr(event, "self_device_time_total", 0) or event.self_cpu_time_total
        if us > 0 and not event.key.startswith("ProfilerStep"):
            totals[event.key] = us / 1e3
            calls[event.key] = event.count
    return ranked_operators(totals, calls, runs, top)
