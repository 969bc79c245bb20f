"""The regression gate: compare two report.json files and say what got worse."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimize.errors import UserError

# The report schemas this comparison understands. Kept here rather than imported from
# optimize.report.results: when the schema moves on, the gate must refuse the new reports until
# someone checks the fields read below, instead of comparing them wrongly.
KNOWN_SCHEMA_VERSIONS = (1,)


@dataclass(frozen=True)
class ChosenVariant:
    """The figures of a report's pick that the gate compares."""

    id: str
    label: str
    runtime: str
    p50_ms: float
    p99_ms: float | None
    size_mb: float | None
    accuracy: float | None  # top-1 accuracy as a fraction, when the eval data had labels
    mean_cosine: float | None


@dataclass(frozen=True)
class VariantChange:
    """A variant present in both reports (matched by label) and what changed about it."""

    label: str
    changes: list[str]


@dataclass
class Comparison:
    """Old report vs new: the picks, their deltas, the variant changes and the breaches."""

    old: ChosenVariant | None
    new: ChosenVariant | None
    max_latency_regression: float
    max_accuracy_drop: float
    latency_change: float | None = None  # relative change of the pick's p50: 0.5 = +50 %
    p99_change: float | None = None
    size_change: float | None = None  # relative
    quality_metric: str | None = None  # "accuracy" or "mean cosine"
    quality_change: float | None = None  # accuracy points, or the cosine difference
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[VariantChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing breached the limits."""
        return not self.regressions


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report.json written by `optimize run`, checking it is one this gate understands."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            f"{path}: no such report; pass the report.json of an `optimize run` output folder"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the report ({exc}); check the path") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "pass the report.json that `optimize run` wrote, or run it again"
        ) from None
    if not isinstance(report, dict) or "schema_version" not in report:
        raise UserError(
            f"{path}: not an optimize report (it has no schema_version); "
            "pass the report.json that `optimize run` wrote"
        )
    version = report["schema_version"]
    if version not in KNOWN_SCHEMA_VERSIONS:
        known = ", ".join(str(v) for v in KNOWN_SCHEMA_VERSIONS)
        raise UserError(
            f"{path}: report schema_version {version!r} is not one this version of optimize "
            f"reads ({known}); re-run `optimize run` with this version, or compare with the "
            "version that wrote it"
        )
    return report


def compare_reports(
    old: dict[str, Any],
    new: dict[str, Any],
    max_latency_regression: float = 0.10,
    max_accuracy_drop: float = 0.0,
) -> Comparison:
    """Compare the pick of `old` with the pick of `new`, and their variants by label.

    `max_latency_regression` is the allowed relative growth of the pick's p50 (0.10 = 10 %);
    `max_accuracy_drop` the allowed fall of its top-1 accuracy in points (1.0 = one point).

    The pick is compared, not `pick_onnx`: the pick is what the report recommends, and
    `pick_onnx` is chosen from a subset of the same variants, so it is never there when the
    pick is missing and cannot stand in for it. When only one report has accuracy (one run
    had labels), quality is shown as mean cosine and not gated: each pick is within its own
    run's cosine tolerance already.
    """
    if max_latency_regression < 0 or max_accuracy_drop < 0:
        raise UserError(
            f"limits must be zero or more (got max_latency_regression={max_latency_regression}, "
            f"max_accuracy_drop={max_accuracy_drop}); 0.10 allows +10 % p50, 1.0 one point"
        )
    c = Comparison(
        old=_chosen(old),
        new=_chosen(new),
        max_latency_regression=max_latency_regression,
        max_accuracy_drop=max_accuracy_drop,
    )
    _compare_variants(c, old, new)
    if old.get("target") != new.get("target"):
        c.notes.append(
            f"targets differ ({old.get('target')} → {new.get('target')}): "
            "latencies are not comparable"
        )
    if c.old and not c.new:
        c.regressions.append(
            f"the new report has no pick (no variant within tolerance); the old one picked "
            f"{c.old.label} ({c.old.p50_ms:.3f} ms)"
        )
    if not (c.old and c.new):
        if c.new:
            c.notes.append(f"the old report had no pick; the new one picks {c.new.label}")
        return c

    if c.old.label != c.new.label:
        c.notes.append(f"pick changed: {c.old.label} → {c.new.label}")
    c.latency_change = _relative(c.old.p50_ms, c.new.p50_ms)
    c.p99_change = _relative(c.old.p99_ms, c.new.p99_ms)
    c.size_change = _relative(c.old.size_mb, c.new.size_mb)
    if c.latency_change is not None and c.latency_change > max_latency_regression:
        c.regressions.append(
            f"{c.latency_change * 100:+.1f}% p50 latency ({c.old.p50_ms:.3f} ms → "
            f"{c.new.p50_ms:.3f} ms) > {max_latency_regression * 100:g}% allowed"
        )

    if c.old.accuracy is not None and c.new.accuracy is not None:
        c.quality_metric = "accuracy"
        # Rounded: accuracy is a count over the same samples, so float noise is not a drop.
        c.quality_change = round(100.0 * (c.new.accuracy - c.old.accuracy), 9)
        if -c.quality_change > max_accuracy_drop:
            c.regressions.append(
                f"{c.quality_change:.2f} accuracy points ({100 * c.old.accuracy:.2f}% → "
                f"{100 * c.new.accuracy:.2f}%) > {max_accuracy_drop:g} allowed"
            )
    elif c.old.mean_cosine is not None and c.new.mean_cosine is not None:
        c.quality_metric = "mean cosine"
        c.quality_change = c.new.mean_cosine - c.old.mean_cosine
        if (c.old.accuracy is None) != (c.new.accuracy is None):
            which = "old" if c.old.accuracy is None else "new"
            c.notes.append(f"quality compared by mean cosine: the {which} report has no accuracy")
    return c


def render_comparison(c: Comparison) -> str:
    """A short Markdown text, readable in a terminal: the picks, the variant changes, the
    regressions."""
    metric = c.quality_metric or "quality"
    lines = [
        f"|     | variant | p50 ms | p99 ms | size MB | {metric} |",
        "|-----|---------|-------:|-------:|--------:|--------:|",
    ]
    for name, chosen in (("old", c.old), ("new", c.new)):
        if chosen is None:
            lines.append(f"| {name} | (no pick) | | | | |")
            continue
        lines.append(
            f"| {name} | {chosen.label} | {chosen.p50_ms:.3f} | {_number(chosen.p99_ms, 3)} "
            f"| {_number(chosen.size_mb, 3)} | {_quality(chosen, c.quality_metric)} |"
        )
    if c.old and c.new:
        quality_delta = ""
        if c.quality_change is not None:
            quality_delta = (
                f"{c.quality_change:+.2f} pts"
                if c.quality_metric == "accuracy"
                else f"{c.quality_change:+.6f}"
            )
        lines.append(
            f"| Δ   | | {_percent(c.latency_change)} | {_percent(c.p99_change)} "
            f"| {_percent(c.size_change)} | {quality_delta} |"
        )
    lines.append("")

    if c.added or c.removed or c.changed:
        lines.append("variants:")
        lines += [f"- added: {label}" for label in c.added]
        lines += [f"- removed: {label}" for label in c.removed]
        lines += [f"- changed: {v.label}: {'; '.join(v.changes)}" for v in c.changed]
    else:
        lines.append("variants: no change")
    lines += [f"note: {note}" for note in c.notes]
    lines.append("")
    if c.regressions:
        lines.append("regressions:")
        lines += [f"- {r}" for r in c.regressions]
    else:
        lines.append("no regression")
    return "\n".join(lines) + "\n"


def _chosen(report: dict[str, Any]) -> ChosenVariant | None:
    pick_id = report.get("pick")
    if pick_id is None:
        return None
    variant = next((v for v in report.get("variants", []) if v.get("id") == pick_id), None)
    if variant is None or not variant.get("measurements"):
        raise UserError(
            f"the report's pick {pick_id} is not among its measured variants; "
            "the report was edited or truncated: run `optimize run` again"
        )
    measurements = variant["measurements"]
    latency = measurements["latency"]
    fidelity = variant.get("fidelity") or {}
    return ChosenVariant(
        id=pick_id,
        label=variant["label"],
        runtime=variant.get("runtime", ""),
        p50_ms=latency["p50_ms"],
        p99_ms=latency.get("p99_ms"),
        size_mb=measurements.get("size_mb"),
        accuracy=fidelity.get("accuracy"),
        mean_cosine=fidelity.get("mean_cosine"),
    )


def _compare_variants(c: Comparison, old: dict[str, Any], new: dict[str, Any]) -> None:
    old_by_label = {v["label"]: v for v in old.get("variants", [])}
    new_by_label = {v["label"]: v for v in new.get("variants", [])}
    c.added = [label for label in new_by_label if label not in old_by_label]
    c.removed = [label for label in old_by_label if label not in new_by_label]
    for label, before in old_by_label.items():
        after = new_by_label.get(label)
        if after is None:
            continue
        changes = _variant_changes(before, after, c.max_latency_regression)
        if changes:
            c.changed.append(VariantChange(label, changes))


def _variant_changes(
    before: dict[str, Any], after: dict[str, Any], latency_limit: float
) -> list[str]:
    changes = []
    if before.get("status") != after.get("status"):
        reason = _short(after.get("reason") or "")
        changes.append(
            f"{before.get('status')} → {after.get('status')}" + (f" ({reason})" if reason else "")
        )
    if before.get("within_tolerance") and not after.get("within_tolerance"):
        verdict = _short(after.get("verdict") or "")
        changes.append("no longer within tolerance" + (f" ({verdict})" if verdict else ""))
    elif after.get("within_tolerance") and not before.get("within_tolerance"):
        changes.append("now within tolerance")
    p50_before, p50_after = _p50(before), _p50(after)
    change = _relative(p50_before, p50_after)
    # Only moves beyond the gate's limit are listed: timing noise on every variant would
    # bury the changes that matter.
    if change is not None and abs(change) > latency_limit:
        changes.append(f"p50 {change * 100:+.1f}% ({p50_before:.3f} → {p50_after:.3f} ms)")
    acc_before = (before.get("fidelity") or {}).get("accuracy")
    acc_after = (after.get("fidelity") or {}).get("accuracy")
    if acc_before is not None and acc_after is not None and round(acc_before - acc_after, 9):
        changes.append(f"accuracy {100 * acc_before:.2f}% → {100 * acc_after:.2f}%")
    return changes


def _p50(variant: dict[str, Any]) -> float | None:
    measurements = variant.get("measurements") or {}
    return (measurements.get("latency") or {}).get("p50_ms")


def _relative(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before <= 0:
        return None
    return after / before - 1.0


def _percent(change: float | None) -> str:
    return "" if change is None else f"{change * 100:+.1f}%"


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _quality(chosen: ChosenVariant, metric: str | None) -> str:
    if metric != "mean cosine" and chosen.accuracy is not None:
        return f"{100 * chosen.accuracy:.2f}%"
    return _number(chosen.mean_cosine, 6)


def _short(text: str, limit: int = 80) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
