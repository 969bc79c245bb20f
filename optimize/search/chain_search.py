"""Searching the chains: build and measure them one step at a time, stop a chain whose
last step is clearly dominated, and stop starting new work when the time budget is spent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from optimize.build.builder import VariantBuilder
from optimize.build.variant import Candidate, Status, Variant
from optimize.choose.ranking import dominated_by
from optimize.config.chains import Chain
from passes.onnx_files import has_attention, op_histogram

# The share of a budget kept for what follows the last new work: the head-to-head and
# writing the outputs.
FINISH_SHARE = 0.15


@dataclass
class Deadline:
    """The run's time budget: no new work (a build, a screening, a full timing) starts
    when it would likely end inside the share kept to finish the run; how long a unit
    takes is judged by the longest stretch between two asks so far."""

    minutes: float | None = None
    started: float = field(default_factory=time.monotonic)
    last_ask: float | None = None
    longest_unit_s: float = 0.0

    @property
    def spent(self) -> str:
        """What a candidate cut by the budget says."""
        return f"the {self.minutes:g}-minute budget was spent"

    def reason(self) -> str | None:
        """Why no new work may start, or None while there is time. Call it before each
        unit of work."""
        now = time.monotonic()
        if self.last_ask is not None:
            self.longest_unit_s = max(self.longest_unit_s, now - self.last_ask)
        self.last_ask = now
        left = self.seconds_left()
        if left is not None and self.longest_unit_s >= left:
            return f"not tried: {self.spent}"
        return None

    def untimed(self) -> str | None:
        """What a candidate the budget leaves untimed says, or None while there is time."""
        return self.spent if self.reason() else None

    def seconds_left(self) -> float | None:
        """Seconds until no new work may start (None without a budget; 0 once past)."""
        if not self.minutes:
            return None
        new_work_until = self.started + self.minutes * 60 * (1 - FINISH_SHARE)
        return max(0.0, new_work_until - time.monotonic())

    def cut_warning(self, candidates: list[Candidate]) -> str | None:
        """What the budget cut, in one warning, or None when it cut nothing."""
        if not self.minutes:
            return None
        untried = [c for c in candidates if self.spent in c.reason]
        untimed = [c for c in candidates if self.spent in c.not_timed_further]
        if not untried and not untimed:
            return None
        parts = [
            f"{len(found)} {what}{_named(found)}"
            for found, what in ((untried, "not tried"), (untimed, "screened, not timed in full"))
            if found
        ]
        return (
            f"{self.spent} after {time.monotonic() - self.started:.0f} s: "
            f"{'; '.join(parts)}; give a larger --budget-minutes to try them"
        )


# An accuracy alternative (other calibration, per-channel scales, fewer ops quantized) cut
# the error by 5-10x on the models measured (MiniLM: per-channel dynamic int8 from 35 to 7
# times the allowed loss, weighted-only static from 650 to 67): one whose variant lost more
# than this many times what the limits allow is out of its reach.
RESCUE_REACH = 10.0


def _spared(chain: Chain, variants: list[Variant], baseline_depth: int) -> str | None:
    """Why an accuracy alternative need not be tried: the variant it is an alternative to
    was not tried, is within the limits already, or is so far outside them that no
    alternative brings it back. None when it must be."""
    if not chain.accuracy_for:
        return None
    labels = [p.label() for p in chain.accuracy_for]
    for variant in variants:
        # Its label names the passes it was made by, or would have been had it been tried.
        if variant.label.split(" → ")[baseline_depth:] != labels:
            continue
        if variant.status == Status.SKIPPED and variant.path is None:
            return f"not tried: {variant.label}, which it is an alternative to, was not tried"
        if not variant.measured:
            continue
        if variant.within_tolerance or not variant.outside_limits:
            already = "is within the limits" if variant.within_tolerance else "cannot win on speed"
            return (
                f"not tried: {variant.label} {already} already, and this chain only trades its "
                "speed for accuracy"
            )
        lost = variant.times_allowed_loss
        if lost is not None and lost > RESCUE_REACH:
            return (
                f"not tried: {variant.label} lost {lost:.0f}× what the limits allow "
                f"({variant.verdict}); this chain cuts the error of that one a few times, "
                "not that much"
            )
    return None


def _has_attention(variant: Variant) -> bool:
    """Whether the variant is an ONNX file of a transformer's graph."""
    path = variant.path
    return path is not None and path.suffix == ".onnx" and has_attention(op_histogram(path))


def _named(candidates: list[Candidate], most: int = 4) -> str:
    """The labels of the first few candidates, in parentheses."""
    labels = [c.label for c in candidates[:most]]
    more = f" and {len(candidates) - most} more" if len(candidates) > most else ""
    return f" ({', '.join(labels)}{more})"


def search(
    chains: list[Chain],
    builder: VariantBuilder,
    measure: Callable[[Variant], None],
    deadline: Deadline | None = None,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    confirm: Callable[[Variant], None] = lambda _: None,
) -> list[Variant]:
    """Every variant tried, in order: each chain is built step by step and each new step
    measured at once; a chain stops (its rest skipped, with the reason) when its last
    measured step is clearly dominated, still after `confirm` measured it again, and no
    step starts after the deadline."""
    deadline = deadline or Deadline()
    variants: list[Variant] = []
    baseline_depth = len(builder.lead_in())

    def screen(variant: Variant) -> None:
        # The same model twice is screened once: a step after the lead-in that left its
        # parent's graph as it was is not measured, but later steps build on it.
        if variant.status != Status.BUILT:
            return
        if len(variant.steps) > baseline_depth and not variant.steps[-1].changed:
            variant.status = Status.SKIPPED
            variant.reason = (
                f"not measured: {variant.steps[-1].label} changed nothing, so it runs as "
                "the variant it was made from"
            )
        else:
            measure(variant)

    def should_stop(parent: Variant) -> str | None:
        if reason := deadline.reason():
            return reason
        if not builder.servable(parent):
            return None
        if len(parent.steps) <= baseline_depth:
            # Every chain starts from the baseline: screened first, so that a step of the
            # first chain is judged against it.
            if parent not in variants:
                variants.append(parent)
                screen(parent)
            return None
        screen(parent)
        if dominated_by(parent, variants):
            confirm(parent)
        if winner := dominated_by(parent, variants):
            return (
                f"not tried: {parent.label} ({parent.p50_ms:.3f} ms) is clearly dominated "
                f"by {winner.label} ({winner.p50_ms:.3f} ms) at no worse quality"
            )
        return None

    for index, chain in enumerate(chains):
        progress(f"chain {index + 1}/{len(chains)}", index, len(chains))
        spared = _spared(chain, variants, baseline_depth)

        def stop(parent: Variant, chain: Chain = chain, spared: str | None = spared) -> str | None:
            reason = spared or should_stop(parent)
            first_step = len(parent.steps) == baseline_depth
            if not reason and chain.not_for_attention and first_step and _has_attention(parent):
                reason = f"not tried: the model has attention; {chain.not_for_attention}"
            return reason

        for variant in builder.build(chain, stop):
            # A pruned PyTorch program, or an export awaiting its preprocessing, is measured
            # through the later step that makes it servable.
            partial = variant.status == Status.BUILT and not builder.servable(variant)
            if variant not in variants and not partial:
                variants.append(variant)
                screen(variant)
    return variants
