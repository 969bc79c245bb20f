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
    c.notes += _model_notes(old, new, allow_different_model)
    c.notes += _host_notes(old, new, allow_different_host)
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


def render_comparison(c: Comparison) -> str:
    """A short Markdown text, readable in a terminal: the picks, the variant changes, the
    regressions."""
    metric = c.quality_metric or "quality"
    rows = [["", "variant", "p50 ms", "p99 ms", "size MB", metric]]
    for name, chosen in (("old", c.old), ("new", c.new)):
        if chosen is None:
            rows.append([name, "(no pick)", "", "", "", ""])
            continue
        rows.append(
            [
                name,
                chosen.label,
                f"{chosen.p50_ms:.3f}",
                _number(chosen.p99_ms, 3),
                _number(chosen.size_mb, 3),
                _quality(chosen, c.quality_metric),
            ]
        )
    if c.old and c.new:
        quality_delta = ""
        if c.quality_change is not None:
            quality_delta = (
                f"{c.quality_change:+.2f} pts"
                if c.quality_metric == "accuracy"
                else f"{c.quality_change:+.6f}"
            )
        rows.append(
            [
                "Δ",
                "",
                _percent(c.latency_change),
                _percent(c.p99_change),
                _percent(c.size_change),
                quality_delta,
            ]
        )
    lines = aligned_table(rows, numeric=range(2, 6))
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


def aligned_table(rows: list[list[str]], numeric: range) -> list[str]:
    """A Markdown table whose columns line up in a terminal: the first row is the header,
    the columns in `numeric` are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if i in numeric else "-" * w for i, w in enumerate(widths)]
    return [line(rows[0]), line(rule), *(line(row) for row in rows[1:])]


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


# What makes two runs' latencies comparable: the same CPU and cores.
HOST_KEYS = ("cpu_model", "logical_cores")
# The packages whose versions move latencies.
VERSION_KEYS = ("onnxruntime", "onnxruntime-gpu", "torch", "openvino", "onnx")


def _model_notes(
    old: dict[str, Any], new: dict[str, Any], allow_different_model: bool
) -> list[str]:
    """A refusal when the two reports are of models taking different inputs (a note when
    allowed); a note when the same inputs come from a changed file (a retrained model)."""
    before, after = old.get("source") or {}, new.get("source") or {}

    def inputs(source: dict[str, Any]) -> list[tuple]:
        return [
            (i.get("name"), tuple(i.get("dims", ())), i.get("dtype"))
            for i in source.get("inputs", [])
        ]

    if inputs(before) != inputs(after):
        said = (
            f"the reports are of different models ({Path(str(before.get('path'))).name} takes "
            f"{_inputs_text(before)}, {Path(str(after.get('path'))).name} takes {_inputs_text(after)})"
        )
        if not allow_different_model:
            raise UserError(f"{said}; compare runs of one model, or pass --allow-different-model")
        return [said]
    if before.get("sha256") != after.get("sha256"):
        return [
            "the model file changed (another sha256): a difference may come from the model itself"
        ]
    return []


def _inputs_text(source: dict[str, Any]) -> str:
    specs = source.get("inputs", [])
    return (
        ", ".join(f"{i.get('name')}:{','.join(map(str, i.get('dims', ())))}" for i in specs)
        or "no inputs"
    )


def _host_notes(old: dict[str, Any], new: dict[str, Any], allow_different_host: bool) -> list[str]:
    """A refusal when the runs were on different machines (a note when allowed), and a
    note naming the packages whose versions differ."""
    before, after = old.get("environment") or {}, new.get("environment") or {}
    moved = [
        f"{k} {before.get(k)!r} → {after.get(k)!r}"
        for k in HOST_KEYS
        if before.get(k) != after.get(k)
    ]
    notes = []
    if moved:
        if not allow_different_host:
            raise UserError(
                f"the reports come from different machines ({'; '.join(moved)}): their "
                "latencies are not comparable; compare runs from one machine, or pass "
                "--allow-different-host to compare anyway"
            )
        notes.append(f"different machines ({'; '.join(moved)}): latencies are not comparable")
    versions_before, versions_after = before.get("versions") or {}, after.get("versions") or {}
    changed = [
        f"{k} {versions_before.get(k)} → {versions_after.get(k)}"
        for k in VERSION_KEYS
        if versions_before.get(k) != versions_after.get(k)
    ]
    if changed:
        notes.append(f"package versions differ ({', '.join(changed)}): a change may come from them")
    return notes


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
