"""Verdicts of the user's limits: quality against the tolerance, speed, size and memory
against their caps."""

from __future__ import annotations

from hardware.profile import Measurements
from optimize.config.limits import Limits
from optimize.records.fidelity import Fidelity


def tolerance_verdict(
    fidelity: Fidelity, tolerance: Limits, total: int | None = None
) -> str | None:
    """Why `fidelity` falls outside `tolerance`, or None when it is within; `total` is the
    size of the evaluation set, of which judging may have stopped short (see
    optimize.measure.workload.fidelity_over)."""
    if fidelity.nonfinite_outputs:
        return f"{fidelity.nonfinite_outputs} NaN/inf output values"
    if fidelity.metric_drop is not None:
        name = "accuracy" if fidelity.metric == "top1" else fidelity.metric or "metric"
        points = fidelity.accuracy_drop_points
        percent = fidelity.relative_drop_percent
        if fidelity.metric == "perplexity":
            most = tolerance.max_perplexity_increase
            return f"perplexity +{percent:.2f}% > +{most}%" if percent > most else None
        if points is not None and points > tolerance.max_accuracy_drop:
            return f"{name} drop {points:.2f} points > {tolerance.max_accuracy_drop}"
        if points is None and percent is not None and percent > tolerance.max_accuracy_drop:
            return f"{name} worse by {percent:.2f}% > {tolerance.max_accuracy_drop}%"
        relative = tolerance.max_relative_accuracy_drop
        if relative is not None and percent is not None and percent > relative:
            return f"{name} drop {percent:.2f}% of the original's > {relative}%"
        return None
    if fidelity.mean_cosine < tolerance.min_cosine:
        part = (
            f" on the first {fidelity.samples} of {total} samples, which the rest could not lift"
            if total and fidelity.samples < total
            else ""
        )
        return f"mean cosine {fidelity.mean_cosine:.5f} < {tolerance.min_cosine}{part}"
    agreement, least = fidelity.top1_agreement, tolerance.min_top1_agreement
    if agreement is not None and least is not None and agreement < least:
        return f"top-1 agreement {agreement:.4f} < {least}"
    return None


def times_the_allowed_loss(fidelity: Fidelity, tolerance: Limits) -> float | None:
    """How many times the loss `tolerance` allows `fidelity` lost (1 at the limit): in
    perplexity, points or percent of the metric, or one minus the mean cosine. None where
    the limit allows no loss, or the loss has no measure (NaN outputs)."""
    if fidelity.nonfinite_outputs:
        return None
    if fidelity.metric_drop is not None:
        percent, points = fidelity.relative_drop_percent, fidelity.accuracy_drop_points
        if fidelity.metric == "perplexity":
            lost, allowed = percent, tolerance.max_perplexity_increase
        else:
            lost = points if points is not None else percent
            allowed = tolerance.max_accuracy_drop
    else:
        lost, allowed = 1.0 - fidelity.mean_cosine, 1.0 - tolerance.min_cosine
    return lost / allowed if lost is not None and allowed > 0 else None


def limits_verdict(measurements: Measurements, tolerance: Limits) -> str | None:
    """Why measured speed or size breaks the user's limits, or None."""
    p50 = measurements.latency.p50_ms
    if tolerance.max_latency_ms is not None and p50 > tolerance.max_latency_ms:
        return f"p50 {p50:.3f} ms > {tolerance.max_latency_ms} ms"
    size = measurements.size_mb
    if tolerance.max_size_mb is not None and size > tolerance.max_size_mb:
        return f"size {size:.2f} MB > {tolerance.max_size_mb} MB"
    # The memory the model costs where it is served: what the session (or the PyTorch model)
    # added to the process, not the interpreter and libraries every runtime loads anyway.
    memory = measurements.session_memory_mb
    if tolerance.max_memory_mb is not None and memory > tolerance.max_memory_mb:
        return f"memory {memory:.1f} MB > {tolerance.max_memory_mb} MB"
    return None
