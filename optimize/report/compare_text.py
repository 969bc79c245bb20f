"""A comparison of two runs as a person reads it in a terminal: the picks side by side in
a table whose columns line up, the variant changes, the notes and the regressions."""

from __future__ import annotations

from optimize.report.compare import ChosenVariant, Comparison


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


def _percent(change: float | None) -> str:
    return "" if change is None else f"{change * 100:+.1f}%"


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _quality(chosen: ChosenVariant, metric: str | None) -> str:
    if metric != "mean cosine" and chosen.accuracy is not None:
        return f"{100 * chosen.accuracy:.2f}%"
    return _number(chosen.mean_cosine, 6)
