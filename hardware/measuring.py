"""Measuring a model on any runtime: a generative runtime's model in its own kind of figures
(time to first token, decode, streams), any other in latency and throughput; both as
Measurements, which the rest of the tool ranks alike."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hardware.generation import measure_as_measurements
from hardware.profile import Measurements, Timing, TimingBudget, measure_model
from hardware.runtimes.base import Runtime
from hardware.runtimes.generative import GenerativeRuntime
from hardware.targets import Target


def measure_on(
    runtime: Runtime,
    artifact: object,
    target: Target,
    feeds: dict[str, np.ndarray],
    batch_feeds: dict[str, np.ndarray],
    settings: object,
    budget: TimingBudget,
    size_mb: float,
    time_batch: Callable[[Timing], bool] = lambda latency: True,
) -> Measurements:
    """Open `artifact` with `runtime` under `settings` and measure it under `budget`: a
    language model from the prompt in `feeds` with as many streams as `batch_feeds` has
    rows, any other model at the batches of `feeds` and, unless `time_batch` of its latency
    says no, `batch_feeds`."""
    if isinstance(runtime, GenerativeRuntime):
        return measure_as_measurements(
            runtime, artifact, target, feeds, batch_feeds, settings, budget, size_mb
        )
    return measure_model(
        runtime, artifact, target, feeds, batch_feeds, settings, budget, size_mb, time_batch
    )
