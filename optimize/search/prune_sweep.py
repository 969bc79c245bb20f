"""The pruning sweep: structured pruning at increasing ratios, each exported and measured,
keeping the largest ratio within tolerance; then that pruned model quantized, and
magnitude pruning shown for what it is (a smaller compressed file, not a faster one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from optimize.build.builder import VariantBuilder
from optimize.build.variant import Status, Variant
from optimize.config.chains import Chain
from optimize.measure.judging import UNJUDGED
from passes.base import Pass
from passes.prune_magnitude import PruneMagnitude
from passes.prune_structured import PruneStructured
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_static import QuantizeStatic
from passes.registry import pass_class

MAGNITUDE_SPARSITY = 0.5


@dataclass
class SweepRow:
    """One ratio of the sweep: the variant that measured it, or why it was not tried."""

    ratio: float
    variant_id: str | None
    verdict: str | None = None


@dataclass
class PruneSweep:
    """The ratios tried, in order, and the largest one kept within tolerance."""

    rows: list[SweepRow] = field(default_factory=list)
    kept_ratio: float | None = None
    note: str = ""


def prune_sweep(
    builder: VariantBuilder,
    measure: Callable[[Variant], None],
    ratios: tuple[float, ...],
    finetune: str = "",
    reduce_range: bool = False,
    should_stop: Callable[[], str | None] = lambda: None,
) -> tuple[list[Variant], PruneSweep]:
    """Prune at each ratio in increasing order, export and measure; stop at the first ratio
    outside tolerance (larger ones only lose more). Returns every measured variant, the
    quantized forms of the kept ratio and a magnitude-pruned variant, with the record."""
    record = PruneSweep()
    variants: list[Variant] = []
    for ratio in ratios:
        if record.rows and (record.rows[-1].verdict or record.rows[-1].variant_id is None):
            record.rows.append(SweepRow(ratio, None, "not tried: a smaller ratio already failed"))
            continue
        if reason := should_stop():
            record.rows.append(SweepRow(ratio, None, reason))
            continue
        chain = Chain((PruneStructured(ratio=ratio, finetune=finetune),), "pruning sweep")
        exported = _build_measured(builder, chain, measure, variants)
        verdict = exported.verdict or (
            exported.reason
            if exported.status != Status.MEASURED
            else None
            if exported.within_tolerance
            else UNJUDGED
        )
        record.rows.append(SweepRow(ratio, exported.id, verdict))
        if exported.within_tolerance:
            record.kept_ratio = ratio
    if record.kept_ratio is None:
        record.note = "no ratio stayed within tolerance: nothing pruned is kept"
    else:
        record.note = f"kept ratio {record.kept_ratio:g}, the largest within tolerance"
        kept = PruneStructured(ratio=record.kept_ratio, finetune=finetune)
        for follow_on in _quantized_after(kept, reduce_range):
            if should_stop() is None:
                _build_measured(builder, follow_on, measure, variants)
    if should_stop() is None:
        magnitude = Chain((PruneMagnitude(sparsity=MAGNITUDE_SPARSITY),), "magnitude pruning")
        _build_measured(builder, magnitude, measure, variants)
    return variants, record


def _quantized_after(pruned: Pass, reduce_range: bool) -> list[Chain]:
    """Prune then quantize: the kept pruned model through both int8 forms, in the int8
    scheme chosen for this CPU."""
    dynamic = QuantizeDynamic(per_channel=True, reduce_range=reduce_range)
    static = QuantizeStatic("minmax", reduce_range=reduce_range)
    return [
        Chain((pruned, dynamic), "pruned, then dynamic int8"),
        Chain((pruned, static), "pruned, then static int8"),
    ]


def _build_measured(
    builder: VariantBuilder,
    chain: Chain,
    measure: Callable[[Variant], None],
    variants: list[Variant],
) -> Variant:
    """Build `chain`, measure its new ONNX steps and add them to `variants` (the baseline
    prefixes belong to the main search); returns the last step."""
    built = builder.build(chain)
    for variant in built:
        partial = variant.status == Status.BUILT and not builder.servable(variant)
        pruned = variant.unbuilt_step or any(_prunes(s.name) for s in variant.steps)
        if variant in variants or partial or not pruned:
            continue
        if variant.status == Status.BUILT:
            measure(variant)
        variants.append(variant)
    return built[-1]


def _prunes(step_name: str) -> bool:
    made_by = pass_class(step_name)
    return bool(made_by and made_by.prunes)
