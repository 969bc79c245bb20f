"""What every measurement of a run shares, and the fidelity of any runner over it."""

from __future__ import annotations

import dataclasses
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
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]],
    workload: Workload,
    min_cosine: float | None = None,
) -> Fidelity:
    """Fidelity of `run`'s outputs against the original's over the evaluation set,
    streamed batch by batch; with `min_cosine`, on unlabelled data (judged by the mean
    cosine), only until the rest could no longer bring the mean up to it."""
    store = workload.eval_store
    tally = FidelityTally(store.metric)
    for batch in store.batches():
        tally.add(batch.reference, run(batch.feeds), batch.labels)
        if (
            min_cosine is not None
            and not store.labelled
            and tally.short_of(min_cosine, store.samples)
        ):
            break
    return tally.result()


# A full timing cut to fit what is left of a budget takes a power-of-two share of the usual
# time, so that a re-run under the same budget asks for figures it already has.
MOST_HALVINGS = 4
# A full timing runs in a fresh process: the interpreter, the runtime and the model load.
PROCESS_START_S = 2.0


def halvings_to_fit(budget: TimingBudget, seconds: float, figures: int) -> int:
    """How many times `budget`'s timing must be halved for `figures` figures, in a fresh
    process, to fit in `seconds`: 0 when it fits as it is, at most MOST_HALVINGS."""
    # A figure usually settles between a quarter of measure_s and three times it.
    per_figure = budget.warmup_s + 1.5 * budget.measure_s
    halvings = 0
    while (
        halvings < MOST_HALVINGS and PROCESS_START_S + figures * per_figure / 2**halvings > seconds
    ):
        halvings += 1
    return halvings


def halved(workload: Workload, halvings: int) -> Workload:
    """`workload` with its timing budget halved `halvings` times."""
    if halvings == 0:
        return workload
    budget, share = workload.budget, 0.5**halvings
    shorter = dataclasses.replace(
        budget,
        warmup_s=budget.warmup_s * share,
        measure_s=budget.measure_s * share,
        min_runs=max(3, budget.min_runs >> halvings),
    )
    return dataclasses.replace(workload, budget=shorter)
