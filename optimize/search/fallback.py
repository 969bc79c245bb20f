"""Accuracy-aware fallback: repair a quantized variant outside tolerance by keeping in
float the nodes whose quantization hurts most, one more at a time."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from optimize.build.builder import VariantBuilder
from optimize.build.variant import Status, Variant
from optimize.choose.ranking import dominated_by
from optimize.measure.fidelity import Fidelity
from passes.base import Pass
from passes.quant_prep import quantizable_nodes

# A judge returns the fidelity of a built variant and why it is outside tolerance (None
# when within).
Judge = Callable[[Variant], tuple[Fidelity, str | None]]


@dataclass
class RepairStep:
    """One greedy step: the nodes kept in float so far, and how the variant then fares."""

    excluded: list[str]
    variant_id: str
    quality: float
    verdict: str | None


@dataclass
class Repair:
    """What the fallback did for one quantized variant."""

    variant_id: str
    sensitivity: dict[str, float] = field(default_factory=dict)
    steps: list[RepairStep] = field(default_factory=list)
    repaired_id: str | None = None
    note: str = ""


def not_worth_repairing(variant: Variant, rival: Variant) -> str:
    """Why the fallback leaves `variant` alone: a variant within tolerance is already
    clearly faster, and keeping nodes in float would only slow `variant` down more."""
    return (
        f"not repaired: at {variant.p50_ms:.3f} ms it is clearly slower than {rival.label} "
        f"({rival.p50_ms:.3f} ms), which is within tolerance; keeping nodes in float would "
        "only add time"
    )


def repair(
    variant: Variant,
    parent: Variant,
    pass_: Pass,
    builder: VariantBuilder,
    judge: Judge,
    max_excluded: int = 16,
    should_stop: Callable[[], str | None] = lambda: None,
) -> tuple[Repair, list[Variant]]:
    """Rank the quantizable nodes by how much excluding each alone helps, then exclude
    them greedily, best first, until the variant is within tolerance or `max_excluded`
    nodes are excluded, or `should_stop` gives a reason. Returns the record and the greedy
    steps' variants (the last one is the repaired variant when the record says so)."""
    record = Repair(variant.id)
    # Nodes the variant already keeps in float stay so; the fallback adds to them.
    kept = tuple(pass_.nodes_to_exclude)
    candidates = [
        node
        for node in quantizable_nodes(parent.path, pass_.repair_op_types, pass_.quantizes_weights_only)
        if node not in kept
    ]
    if not candidates:
        record.note = "no quantized node to exclude"
        return record, []

    def build(nodes: tuple[str, ...]) -> Variant | None:
        """The variant with `nodes` kept in float too; an earlier repair may have built
        (and measured) it already."""
        built = builder.build_after(parent, dataclasses.replace(pass_, nodes_to_exclude=nodes))
        return built if built.status in (Status.BUILT, Status.MEASURED) else None

    for node in candidates:
        if reason := should_stop():
            record.note = reason
            return record, []
        probe = build((*kept, node))
        if probe is None:
            continue
        fidelity, verdict = judge(probe)
        record.sensitivity[node] = fidelity.quality
        if verdict is None:
            record.steps.append(RepairStep([*kept, node], probe.id, fidelity.quality, None))
            record.repaired_id = probe.id
            record.note = f"within tolerance with 1 more node in float: {node}"
            return record, [probe]
    ranked = sorted(record.sensitivity, key=record.sensitivity.get, reverse=True)
    steps: list[Variant] = []
    for count in range(2, min(max_excluded, len(ranked)) + 1):
        if reason := should_stop():
            record.note = reason
            return record, steps
        excluded = (*kept, *ranked[:count])
        step = build(excluded)
        if step is None:
            continue
        fidelity, verdict = judge(step)
        steps.append(step)
        record.steps.append(RepairStep(list(excluded), step.id, fidelity.quality, verdict))
        if verdict is None:
            record.repaired_id = step.id
            record.note = f"within tolerance with {count} more nodes in float"
            return record, steps
    added = len(record.steps[-1].excluded) - len(kept) if record.steps else 1
    record.note = (
        f"still outside tolerance with {added} more of {len(candidates)} quantizable nodes in float"
    )
    return record, steps


def repair_outside_tolerance(
    variants: list[Variant],
    builder: VariantBuilder,
    judge: Judge,
    measure: Callable[[Variant], None],
    max_excluded: int = 16,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    should_stop: Callable[[], str | None] = lambda: None,
) -> list[Repair]:
    """Repair every measured variant outside tolerance that a repairable pass made, unless
    a variant within tolerance is already clearly faster; each greedy step is measured and
    appended to `variants`. No repair or step starts once `should_stop` gives a reason."""
    repairs = []
    for variant in [v for v in variants if v.measured and v.verdict]:
        made_by = builder.made_by.get(variant.id)
        if made_by is None or not made_by[1].repairable:
            continue
        if reason := should_stop():
            repairs.append(Repair(variant.id, note=reason))
            continue
        if rival := dominated_by(variant, [v for v in variants if v.within_tolerance]):
            repairs.append(Repair(variant.id, note=not_worth_repairing(variant, rival)))
            continue
        progress(f"repairing {variant.label}", 0, 0)
        record, steps = repair(variant, *made_by, builder, judge, max_excluded, should_stop)
        repairs.append(record)
        for step in steps:
            if any(step is v for v in variants):
                continue  # built and measured by an earlier repair
            measure(step)
            variants.append(step)
    return repairs
