"""What every measurement of a run shares, and the fidelity of any runner over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hardware.profile import TimingBudget
from hardware.targets import Target
from optimize.data.eval_store import EvalStore
from optimize.records.fidelity import Fidelity, FidelityTally


@dataclass
class Workload:
    """What every measurement in a run shares: the target, the evaluation set (inputs, the
    original model's outputs on them, labels) and its metric, the inputs timed runs use,
    batch sizes and the timing budget."""

    target: Target
    eval_store: EvalStore
    timing_feeds: dict[str, np.ndarray]
    latency_batch: int
    throughput_batch: int
    eval_batch: int
    budget: TimingBudget


def fidelity_over(
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]], workload: Workload
) -> Fidelity:
    """Fidelity of `run`'s outputs against the original's over the whole evaluation set,
    streamed batch by batch."""
    tally = FidelityTally(workload.eval_store.metric)
    for batch in workload.eval_store.batches():
        tally.add(batch.reference, run(batch.feeds), batch.labels)
    return tally.result()
