"""What the run warns about its figures: why a quantized or reduced-precision variant came
out slower than the model it was made from (the conversion overhead a person can act on),
which latencies are too noisy to rank, and which were taken beside a busy neighbour."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hardware.load_guard import BUSY_SHARE, TAKES
from hardware.profile import NOISY_SPREAD
from optimize.build.variant import Candidate, Variant
from optimize.measure.judging import SCREEN_MARGIN
from passes.base import Pass
from passes.onnx_files import op_histogram
from passes.registry import pass_class

CONVERSION_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast")


def slowdown_note(
    variant: Variant,
    parent: Variant,
    profile: Callable[[Variant], list[dict[str, Any]]] | None = None,
) -> str | None:
    """A note when `variant`, made by a low-precision pass, is slower than `parent` beyond
    noise: how much slower, how many conversion nodes it carries against the float ops it
    still runs and, given `profile` (a variant's per-operator profile), the time those
    conversions take, the operators that grew most against the parent, and operators that
    fell back from the GPU to the CPU."""
    if not (variant.p50_ms and parent.p50_ms) or not variant.steps:
        return None
    made_by = pass_class(variant.steps[-1].name)
    # Slower within noise is not slower: its profile would explain nothing.
    noise = SCREEN_MARGIN + variant.spread + parent.spread
    if not (made_by and made_by.lowers_precision) or variant.p50_ms <= parent.p50_ms * (1 + noise):
        return None
    ops = op_histogram(variant.path)
    conversions = {op: n for op, n in ops.items() if _base(op) in CONVERSION_OPS}
    others = sum(n for op, n in ops.items() if op not in conversions)
    counted = ", ".join(f"{n} {op}" for op, n in conversions.items()) or "no conversion nodes"
    note = (
        f"{variant.p50_ms / parent.p50_ms:.2f}× slower than {parent.label}: {counted} "
        f"around {others} compute nodes; each conversion costs a pass over its tensor, which "
        "outweighs integer or half-precision arithmetic on a small model, or where the CPU "
        "lacks fast kernels for it"
    )
    if profile is None or parent.path is None:
        return note
    mine, theirs = profile(variant), profile(parent)
    return "; ".join([note, *_profile_findings(mine, theirs)])


def _base(op: str) -> str:
    return op.split(".")[-1]


def _profile_findings(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[str]:
    """What the two operator profiles show: conversion time, the biggest increases, and
    operators run by the CPU provider while the rest ran on a GPU."""
    if not mine:
        return []
    findings = []
    converting = [r for r in mine if _base(str(r["op_type"])) in CONVERSION_OPS]
    if converting:
        share = sum(r["share"] for r in converting)
        per_run = sum(r["per_run_ms"] for r in converting)
        findings.append(
            f"its profile spends {100 * share:.0f}% of kernel time ({per_run:.4f} ms per run) "
            "in conversions"
        )
    before = {r["op_type"]: r["per_run_ms"] for r in theirs}
    growth = sorted(
        ((r["per_run_ms"] - before.get(r["op_type"], 0.0), r["op_type"]) for r in mine),
        reverse=True,
    )
    grown = [f"{op} +{ms:.4f} ms" for ms, op in growth[:3] if ms > 0]
    if grown:
        findings.append("largest increases per run over its parent: " + ", ".join(grown))
    main = max(mine, key=lambda r: r["share"]).get("provider", "")
    if main and main != "CPUExecutionProvider":
        fell_back = [str(r["op_type"]) for r in mine if r.get("provider") == "CPUExecutionProvider"]
        if fell_back:
            findings.append(f"fell back to the CPU provider: {', '.join(fell_back)}")
    return findings


def slowdown_warnings(
    variants: list[Variant],
    made_by: dict[str, tuple[Variant, Pass]],
    profile: Callable[[Variant], list[dict[str, Any]]],
) -> list[str]:
    """A warning for each low-precision variant slower than the variant it was made from."""
    warnings = []
    for variant in variants:
        parent = made_by.get(variant.id)
        if parent and (note := slowdown_note(variant, parent[0], profile)):
            warnings.append(f"{variant.label}: {note}")
    return warnings


def parity_warnings(candidates: list[Candidate]) -> list[str]:
    """One loud warning when the export's own outputs did not match the original's."""
    for variant in candidates:
        for step in variant.steps if isinstance(variant, Variant) else []:
            if step.metrics.get("parity_ok") == 0.0:
                return [f"EXPORT PARITY FAILED: {step.note}"]
    return []


def noise_warning(variants: list[Candidate]) -> str | None:
    """A warning naming the measured variants whose latency spread is too wide to rank them
    against others that differ by less, or None."""
    noisy = [
        f"{v.label} ({100 * v.spread:.0f}%)"
        for v in variants
        if v.measured and v.spread > NOISY_SPREAD
    ]
    if not noisy:
        return None
    return (
        f"noisy latency (spread over {100 * NOISY_SPREAD:.0f}% of the median): "
        f"{', '.join(noisy)}; a difference smaller than the spread is noise: measure longer "
        "(--measure-seconds) on a quieter machine before trusting it"
    )


def load_warning(variants: list[Candidate]) -> str | None:
    """A warning naming the candidates whose figures were taken while other processes kept
    the cores busy, even after re-taking them, or None."""
    busy = []
    for v in variants:
        share = v.measurements.others_cpu_share if v.measured else None
        if share is not None and share > BUSY_SHARE:
            busy.append(f"{v.label} ({100 * share:.0f}% of the cores)")
    if not busy:
        return None
    return (
        f"other processes kept the CPU busy while these were timed, taken {TAKES} times: "
        f"{', '.join(busy)}; a busy neighbour slows runtimes unevenly, so these figures may "
        "rank the neighbour's load rather than the runtimes: measure on a quiet machine"
    )
