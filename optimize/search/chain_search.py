"""Searching the chains: build and measure them one step at a time, stop a chain whose
last step is clearly dominated, and stop starting new work when the time budget is spent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from optimize.build.builder import VariantBuilder
from optimize.build.variant import Status, Variant
from optimize.choose.ranking import dominated_by
from optimize.config.chains import Chain


@dataclass(frozen=True)
class Deadline:
    """The run's time budget: after it, no new variant starts."""

    minutes: float | None = None
    started: float = field(default_factory=time.monotonic)

    def reason(self) -> str | None:
        """Why no new work may start, or None while there is time."""
        if self.minutes and time.monotonic() - self.started > self.minutes * 60:
            return f"not tried: the {self.minutes:g}-minute budget was spent"
        return None


def search(
    chains: list[Chain],
    builder: VariantBuilder,
    measure: Callable[[Variant], None],
    deadline: Deadline = Deadline(),
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> list[Variant]:
    """Every variant tried, in order: each chain is built step by step and each new step
    measured at once; a chain stops (its rest skipped, with the reason) when its last
    measured step is clearly dominated, and no step starts after the deadline."""
    variants: list[Variant] = []
    baseline_depth = len(builder.lead_in())

    def should_stop(parent: Variant) -> str | None:
        if reason := deadline.reason():
            return reason
        if len(parent.steps) <= baseline_depth or not builder.servable(parent):
            return None  # every chain starts from the baseline (or its pruned form)
        if parent.status == Status.BUILT:
            measure(parent)
        if winner := dominated_by(parent, variants):
            return (
                f"not tried: {parent.label} ({parent.p50_ms:.3f} ms) is clearly dominated "
                f"by {winner.label} ({winner.p50_ms:.3f} ms) at no worse quality"
            )
        return None

    for index, chain in enumerate(chains):
        progress(f"chain {index + 1}/{len(chains)}", index, len(chains))
        for variant in builder.build(chain, should_stop):
            # A pruned PyTorch program, or an export awaiting its preprocessing, is measured
            # through the later step that makes it servable.
            partial = variant.status == Status.BUILT and not builder.servable(variant)
            if variant not in variants and not partial:
                variants.append(variant)
                if variant.status == Status.BUILT:
                    measure(variant)
    return variants
