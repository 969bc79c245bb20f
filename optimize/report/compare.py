"""The regression gate: compare two report.json files and say what got worse."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimize.errors import UserError
from optimize.report.compare_sources import host_notes, model_notes

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
    iqr_ms: float  # the spread of its latency: the inter-quartile range of its runs
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
    allow_different_host: bool = False,
    allow_different_model: bool = False,
) -> Comparison:
    """Compare the pick of `old` with the pick of `new`, and their variants by label.

    `max_latency_regression` is the allowed relative growth of the pick's p50 (0.10 = 10 %)
    beyond both runs' spreads: the new p50 less half its inter-quartile range must exceed
    the old p50 plus half its own by more than that, so timing noise is not a regression.
    `max_accuracy_drop` is the allowed fall of its top-1 accuracy in points (1.0 = one point).
    Reports from different machines are refused unless `allow_different_host`, and reports
    of models with different inputs unless `allow_different_model`; different package
    versions and a changed model file are noted.

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
    c.notes += model_notes(old, new, allow_different_model)
    c.notes += host_notes(old, new, allow_different_host)
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
        said = (
            f"{c.latency_change * 100:+.1f}% p50 latency ({c.old.p50_ms:.3f} ms ± "
            f"{c.old.iqr_ms / 2:.3f} → {c.new.p50_ms:.3f} ms ± {c.new.iqr_ms / 2:.3f})"
        )
        if slower_beyond_noise(c.old, c.new, max_latency_regression):
            c.regressions.append(f"{said} > {max_latency_regression * 100:g}% allowed")
        else:
            c.notes.append(f"{said}: within the two runs' spreads, not counted as a regression")

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
        iqr_ms=latency.get("iqr_ms") or 0.0,
        p99_ms=latency.get("p99_ms"),
        size_mb=measurements.get("size_mb"),
        accuracy=fidelity.get("accuracy"),
        mean_cosine=fidelity.get("mean_cosine"),
    )


def slower_beyond_noise(old: ChosenVariant, new: ChosenVariant, limit: float) -> bool:
    """Whether `new` is slower than `old` by more than `limit`, beyond half of each one's
    inter-quartile range: what a few noisy runs cannot explain."""
    return _beyond_noise((old.p50_ms, old.iqr_ms), (new.p50_ms, new.iqr_ms), limit)


def _beyond_noise(before: tuple[float, float], after: tuple[float, float], limit: float) -> bool:
    """Whether the (p50, iqr) `after` is slower than `before` by more than `limit` beyond
    half of each inter-quartile range."""
    return after[0] - after[1] / 2 > (before[0] + before[1] / 2) * (1 + limit)


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
    # None: measured with its outputs unjudged, neither within the limits nor outside.
    if before.get("within_tolerance") is True and after.get("within_tolerance") is False:
        verdict = _short(after.get("verdict") or "")
        changes.append("no longer within tolerance" + (f" ({verdict})" if verdict else ""))
    elif after.get("within_tolerance") is True and before.get("within_tolerance") is False:
        changes.append("now within tolerance")
    (p50_before, iqr_before), (p50_after, iqr_after) = _latency(before), _latency(after)
    change = _relative(p50_before, p50_after)
    # Only moves beyond the gate's limit and both spreads are listed: timing noise on
    # every variant would bury the changes that matter.
    if change is not None and (
        _beyond_noise((p50_before, iqr_before), (p50_after, iqr_after), latency_limit)
        or _beyond_noise((p50_after, iqr_after), (p50_before, iqr_before), latency_limit)
    ):
        changes.append(f"p50 {change * 100:+.1f}% ({p50_before:.3f} → {p50_after:.3f} ms)")
    acc_before = (before.get("fidelity") or {}).get("accuracy")
    acc_after = (after.get("fidelity") or {}).get("accuracy")
    if acc_before is not None and acc_after is not None and round(acc_before - acc_after, 9):
        changes.append(f"accuracy {100 * acc_before:.2f}% → {100 * acc_after:.2f}%")
    return changes


def _latency(variant: dict[str, Any]) -> tuple[float | None, float]:
    """The variant's p50 and the inter-quartile range of its runs."""
    latency = (variant.get("measurements") or {}).get("latency") or {}
    return latency.get("p50_ms"), latency.get("iqr_ms") or 0.0


def _relative(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before <= 0:
        return None
    return after / before - 1.0


def _short(text: str, limit: int = 80) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
