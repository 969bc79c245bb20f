"""PyTorch's operator profile, and the PyTorch entry points callers import from here:
thin wrappers over the runtime in hardware/runtimes/pytorch.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hardware.profile import Measurements, TimingBudget, measure_model
from hardware.runtimes.pytorch import (
    AUTOCAST,
    MODES,
    TorchRuntime,
    TorchSettings,
    candidates,
    positional_feeds,
    unsupported,
    unsupported_autocast,
    weights_mb,
)
from hardware.targets import Target

# Names callers import from here.
__all__ = [
    "AUTOCAST",
    "MODES",
    "TorchSettings",
    "candidates",
    "profile_torch",
    "torch_operator_profile",
    "torch_runner",
    "unsupported",
    "unsupported_autocast",
]


def torch_runner(
    model: Any, target: Target, settings: TorchSettings
) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """A function running the model under `settings` on one batch of positional arrays."""
    opened = TorchRuntime().open(model, target, settings)

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return opened.run(positional_feeds(arrays))

    return run


def profile_torch(
    model: Any,
    target: Target,
    args: list[np.ndarray],
    batch_args: list[np.ndarray],
    settings: TorchSettings,
    budget: TimingBudget = TimingBudget(),
) -> Measurements:
    """measure_model for PyTorch on positional arguments: the model's weights in memory
    as its size, device synchronisation on GPU."""
    return measure_model(
        TorchRuntime(),
        model,
        target,
        positional_feeds(args),
        positional_feeds(batch_args),
        settings,
        budget,
        weights_mb(model),
    )


def torch_operator_profile(
    model: Any,
    target: Target,
    args: list[np.ndarray],
    settings: TorchSettings,
    runs: int = 20,
    top: int = 10,
) -> list[dict[str, object]]:
    """The `top` PyTorch operators by self time over `runs` runs after warm-up (a compiled
    model's kernels show as the aten ops they call), with share and calls per run."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from hardware.op_profile import ranked_operators

    run, _ = TorchRuntime().open(model, target, settings).bind(positional_feeds(args))
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
