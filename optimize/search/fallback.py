"""Accuracy-aware fallback: repair a quantized variant outside tolerance by keeping in
float the nodes whose quantization hurts most: ranked from one float run, then kept in
float in growing numbers (1, 2, 4, …) and the fewest that suffice found by bisection."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from optimize.build.builder import VariantBuilder
from optimize.build.variant import Status, Variant
from optimize.choose.ranking import within_noise_of
from optimize.choose.screening import SCREEN_MARGIN, fastest_within_limits
from optimize.measure.judging import UNJUDGED
from passes.base import Pass
from passes.quant_prep import quantized_nodes

# Estimates how much quantizing each node of the parent model hurts (see
# passes.quant_error): {node name: relative output error}; empty when it cannot tell.
RankNodes = Callable[[Variant, Pass], dict[str, float]]


@dataclass
class RepairStep:
    """One step: the nodes kept in float, and how the variant then fares."""

    excluded: list[str]
    variant_id: str
    quality: float
    verdict: str | None


@dataclass
class Repair:
    """What the fallback did for one quantized variant. `sensitivity` is each candidate
    node's estimated relative output error from quantizing it, in the order tried."""

    variant_id: str
    sensitivity: dict[str, float] = field(default_factory=dict)
    steps: list[RepairStep] = field(default_factory=list)
    repaired_id: str | None = None
    note: str = ""


def not_worth_repairing(variant: Variant, rival: Variant) -> str:
    """Why the fallback leaves `variant` alone: a variant within tolerance is about as
    fast already, and keeping nodes in float would only slow `variant` down."""
    return (
        f"not repaired: at {variant.p50_ms:.3f} ms it is not clearly faster than "
        f"{rival.label} ({rival.p50_ms:.3f} ms), which is within tolerance; keeping nodes "
        "in float would only add time"
    )


def rival_within_limits(variant: Variant, variants: list[Variant]) -> Variant | None:
    """The fastest variant within the limits when it is about as fast as `variant` (within
    noise) or faster: repairing `variant` only slows it, so it could not win; else None."""
    rival = fastest_within_limits(variants)
    if rival is not None and within_noise_of(variant, rival, SCREEN_MARGIN):
        return rival
    return None


def repair(
    variant: Variant,
    parent: Variant,
    pass_: Pass,
    builder: VariantBuilder,
    measure: Callable[[Variant], None],
    rank: RankNodes,
    max_excluded: int = 16,
    should_stop: Callable[[], str | None] = lambda: None,
) -> tuple[Repair, list[Variant]]:
    """Keep in float the 1, 2, 4, … nodes `rank` says hurt most until the variant is within
    tolerance (at most `max_excluded` more), then bisect for the fewest that suffice; stop
    when `should_stop` gives a reason. Returns the record and the measured steps."""
    record = Repair(variant.id)
    # Nodes the variant already keeps in float stay so; the fallback adds to them.
    kept = tuple(pass_.nodes_to_exclude)
    candidates = [node for node in quantized_nodes(parent.path, variant.path) if node not in kept]
    if not candidates:
        record.note = "no quantized node to exclude"
        return record, []
    errors = rank(parent, pass_)
    ranked = sorted(candidates, key=lambda n: errors.get(n, 0.0), reverse=True)
    record.sensitivity = {n: errors.get(n, 0.0) for n in ranked}
    steps: list[Variant] = []
    within: dict[int, Variant] = {}

    def within_with(count: int) -> bool:
        """Build and measure the variant with `count` more nodes in float; whether it is
        within tolerance."""
        excluded = (*kept, *ranked[:count])
        built = builder.build_after(parent, dataclasses.replace(pass_, nodes_to_exclude=excluded))
        if built.status == Status.BUILT:
            measure(built)
        if not built.measured:
            return False
        steps.append(built)
        verdict = built.verdict or (None if built.within_tolerance else UNJUDGED)
        record.steps.append(RepairStep(list(excluded), built.id, built.quality, verdict))
        if built.within_tolerance:
            within[count] = built
        return built.within_tolerance

    most = min(max_excluded, len(ranked))
    outside, count = 0, 1
    while not within:
        if reason := should_stop():
            record.note = reason
            return record, steps
        if not within_with(count):
            outside = count
            if steps and not steps[-1].outside_limits:
                # Slower beyond noise than one within the limits; more float, slower still.
                record.note = f"stopped: {UNJUDGED}"
                return record, steps
            if count == most:
                record.note = (
                    f"still outside tolerance with {count} more of the {len(candidates)} "
                    "nodes quantization changed in float"
                    + (f" (at most {max_excluded} are tried)" if count < len(candidates) else "")
                )
                return record, steps
            count = min(2 * count, most)
    fewest = count
    while fewest - outside > 1 and not should_stop():
        middle = (outside + fewest) // 2
        if within_with(middle):
            fewest = middle
        else:
            outside = middle
    record.repaired_id = within[fewest].id
    record.note = f"within tolerance with {fewest} more node(s) in float"
    record.steps.sort(key=lambda step: len(step.excluded))
    return record, steps


def repair_outside_tolerance(
    variants: list[Variant],
    builder: VariantBuilder,
    measure: Callable[[Variant], None],
    rank: RankNodes,
    max_excluded: int = 16,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    should_stop: Callable[[], str | None] = lambda: None,
) -> list[Repair]:
    """Repair each measured variant outside tolerance that a repairable pass made, fastest
    first, unless one within tolerance is about as fast already (a repair only slows a
    variant, so it could not win); each step is measured and appended to `variants`. No
    repair or step starts once `should_stop` gives a reason."""
    repairs = []
    outside = sorted((v for v in variants if v.measured and v.verdict), key=lambda v: v.p50_ms)
    for variant in outside:
        made_by = builder.made_by.get(variant.id)
        if made_by is None or not made_by[1].repairable:
            continue
        if reason := should_stop():
            repairs.append(Repair(variant.id, note=reason))
            continue
        if rival := rival_within_limits(variant, variants):
            repairs.append(Repair(variant.id, note=not_worth_repairing(variant, rival)))
            continue
        progress(f"repairing {variant.label}", 0, 0)
        record, steps = repair(variant, *made_by, builder, measure, rank, max_excluded, should_stop)
        repairs.append(record)
        variants += [step for step in steps if not any(step is v for v in variants)]
    return repairs
