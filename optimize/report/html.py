"""report.html: one self-contained page for a team: the pick, the charts and every table."""

from __future__ import annotations

from html import escape

from optimize.report.charts import Charts
from optimize.report.html_details import (
    chain_html,
    chains_tried_html,
    contest_html,
    environment_html,
    figure_html,
    op_profile_html,
    repairs_html,
)
from optimize.report.interactive_plot import pareto_html
from optimize.report.markdown import variant_cells
from optimize.report.plot_labels import short_label
from optimize.report.plots import quality_value, uses_accuracy
from optimize.report.results import Results
from optimize.report.warning_groups import group_warnings
from optimize.serve.stream_report import under_load_lines

# The variant table's columns in the page: what fits 1366 px; the full chain, its status
# and every other figure are in report.md and variants.csv, and on hover here.
HTML_COLUMNS = (
    "variant",
    "p50 ms",
    "p99 ms",
    "spread",
    "threads",
    "items/s",
    "size MB",
    "memory MB",
    "cosine",
    "score",
    "within tol.",
)
TEXT_COLUMNS = {"variant", "within tol."}

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b;
  margin: 0 auto; max-width: 1280px; padding: 24px 32px 48px; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 32px 0 8px;
  border-bottom: 1px solid #ddd; padding-bottom: 4px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #eef1f4; padding: 1px 4px; border-radius: 3px; }
.summary { background: #fff; border: 1px solid #ddd; border-left: 6px solid #f9a825;
  border-radius: 6px; padding: 14px 18px; }
.summary.none { border-left-color: #c62828; }
.speedup { font-size: 28px; font-weight: 700; color: #2e7d32; margin-right: 4px; }
.muted { color: #555; } .small { font-size: 12.5px; }
.warnings { background: #fff8e1; border: 1px solid #f0d58a; border-radius: 6px;
  padding: 8px 18px; } .warnings li { margin: 4px 0; }
.scroll { overflow-x: auto; background: #fff; border: 1px solid #ddd; border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { padding: 5px 9px; border-bottom: 1px solid #eee; text-align: right;
  white-space: nowrap; vertical-align: top; }
th { background: #f1f3f5; position: sticky; top: 0; }
th.text, td.text { text-align: left; }
td.reason { text-align: left; white-space: normal; color: #555; }
tr.pick td { background: #fff3c4; font-weight: 600; }
tr.outside td { color: #b71c1c; }
tr.unmeasured td { color: #777; background: #fbfbfb; }
figure { margin: 8px 0; background: #fff; border: 1px solid #ddd; border-radius: 6px;
  padding: 8px; text-align: center; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 12.5px; color: #555; text-align: left; padding: 4px 8px; }
.meta { margin: -6px 0 14px; }
.first { display: grid; grid-template-columns: minmax(300px, 2fr) 3fr; gap: 16px;
  align-items: start; } .first .plot { background: #fff; border: 1px solid #ddd;
  border-radius: 6px; padding: 4px; min-width: 0; }
.figures { display: grid; grid-template-columns: max-content max-content; gap: 2px 12px;
  margin: 8px 0; } .figures dt { font-weight: 400; color: #555; }
details.warnings summary { cursor: pointer; font-weight: 600; }
td.text .status { display: block; font-size: 11.5px; color: #666; font-weight: 400;
  white-space: normal; max-width: 380px; }
td.text .chain { display: inline-block; max-width: 380px; overflow: hidden;
  text-overflow: ellipsis; vertical-align: bottom; }
.bar { display: inline-block; height: 10px; background: #1565c0; opacity: .7;
  border-radius: 2px; vertical-align: middle; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dt { font-weight: 600; } dd { margin: 0; }
"""


def render_html(results: Results, charts: Charts | None = None) -> str:
    """The page, with `charts` embedded; without them, the interactive Pareto plot alone
    is drawn for it."""
    title = f"optimize report: {results.source_path.name} on {results.target}"
    charts = charts or Charts(interactive=pareto_html(results))
    plot = charts.interactive or figure_html(
        charts.pareto, "Latency against quality for every measured variant", ""
    )
    body = [
        f"<h1>{escape(title)}</h1>",
        _meta(results),
        f"<div class='first'>{_summary(results)}<div class='plot'>{plot}</div></div>",
        _warnings(results),
        _variant_table(results),
        contest_html(results),
        repairs_html(results),
        chain_html(results, charts.chain),
        _load(results, charts.load),
        op_profile_html(results),
        chains_tried_html(results),
        environment_html(results),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n</body>\n</html>\n"
    )


def _meta(results: Results) -> str:
    version = results.environment.get("versions", {}).get("optimize", "unknown")
    when = results.finished_at.replace("T", " ").replace("+00:00", " UTC") or "unknown"
    return f"<p class='meta muted small'>optimize {escape(version)} · finished {escape(when)}</p>"


def _pick_figures(results: Results) -> str:
    """The pick against the baseline: speed, quality and size, side by side."""
    pick, baseline = results.pick, results.baseline
    accuracy = uses_accuracy(results)
    unit = "%" if accuracy else ""
    digits = 2 if accuracy else 4

    def quality(v) -> str:
        return f"{quality_value(v, accuracy):.{digits}f}{unit}" if v.fidelity else "–"

    speedup = results.speedup
    rows = [
        (
            "latency p50, batch 1",
            f"{speedup.pick_ms:.3f} ms",
            f"{speedup.baseline_ms:.3f} ms",
        )
    ]
    rows.append(
        (
            "throughput",
            f"{pick.measurements.throughput_per_s:,.0f} items/s",
            f"{baseline.measurements.throughput_per_s:,.0f} items/s",
        )
    )
    rows.append(("quality", quality(pick), quality(baseline)))
    rows.append(("size", f"{pick.size_mb:.2f} MB", f"{baseline.size_mb:.2f} MB"))
    cells = "".join(
        f"<dt>{escape(name)}</dt><dd><strong>{escape(mine)}</strong> "
        f"<span class='muted'>(baseline {escape(theirs)})</span></dd>"
        for name, mine, theirs in rows
    )
    return f"<dl class='figures'>{cells}</dl>"


def _summary(results: Results) -> str:
    pick, baseline = results.pick, results.baseline
    rule = (
        f"<p class='muted small'>Rule: {escape(results.rule)}. Tolerance: "
        f"{escape(results.tolerance_text)}. Fidelity inputs: "
        f"{escape(str(results.eval_data.get('description', 'unknown')))}.</p>"
    )
    if pick is None:
        closest = results.closest
        text = f"<p><strong>{escape(results.why_no_pick)}.</strong></p>"
        if closest:
            text += (
                f"<p>The closest, <code>{escape(closest.label)}</code> "
                f"({escape(closest.verdict or '')}), is saved as <code>closest.onnx</code>: "
                "it does not meet the limit.</p>"
            )
        return f"<section class='summary none'>{text}{rule}</section>"
    lines = [
        f"<p><strong>Pick:</strong> <code>{escape(pick.label)}</code> → {results.pick_file}</p>"
    ]
    if speedup := results.speedup:
        tie = ": a tie within noise" if speedup.tie else ""
        headline = (
            f"<span class='speedup'>{speedup.ratio:.2f}×</span> the speed of the baseline "
            f"<code>{escape(baseline.label)}</code>{tie}"
        )
        where = "timed head to head" if speedup.head_to_head else "each timed in full"
        lines.append(f"<p>{headline} <span class='muted small'>({where})</span></p>")
        if pick.measurements and baseline.measurements:
            lines.append(_pick_figures(results))
    if results.pick_onnx and results.pick_onnx is not pick:
        lines.append(
            f"<p>Best ONNX variant: <code>{escape(results.pick_onnx.label)}</code> → best.onnx "
            f"({results.pick_onnx.p50_ms:.3f} ms)</p>"
        )
    return f"<section class='summary'>{''.join(lines)}{rule}</section>"


def _warnings(results: Results) -> str:
    if not results.warnings:
        return ""
    groups = []
    for kind, warnings in group_warnings(results.warnings):
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        groups.append(
            f"<details class='warnings'><summary>⚠ {escape(kind)} ({len(warnings)})</summary>"
            f"<ul>{items}</ul></details>"
        )
    return f"<h2>Warnings ({len(results.warnings)})</h2>" + "".join(groups)


def _load(results: Results, png: bytes | None) -> str:
    said = under_load_lines(results.load_sweeps, results.stream_sweep)
    if not said:
        return ""
    lines = "".join(f"<li>{escape(line)}</li>" for line in said)
    if not results.load_sweeps:
        return f"<h2>Under load</h2><ul>{lines}</ul>"
    caption = "Rising closed-loop load per setup; every point is in serving/load_sweep.md"
    return f"<h2>Under load</h2><ul>{lines}</ul>" + figure_html(
        png, "Throughput against p99", caption
    )


def _variant_name(variant, cells: dict[str, str], pick_id: str | None) -> str:
    """A short label with the full chain and its status on hover, the status beneath."""
    star = " ★" if variant.id == pick_id else ""
    full = f"{variant.label}\n{cells['status']}"
    status = cells["status"] if cells["status"] != "measured" else ""
    under = f"<span class='status'>{escape(_cut(status, 90))}</span>" if status else ""
    return (
        f"<span class='chain' title='{escape(full)}'>{escape(short_label(variant))}</span>"
        f"{escape(star)}{under}"
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _variant_table(results: Results) -> str:
    pick_id = results.pick.id if results.pick else None
    header = "".join(
        f"<th class='{'text' if c in TEXT_COLUMNS else 'num'}'>{escape(c)}</th>"
        for c in HTML_COLUMNS
    )
    rows = []
    for variant in results.variants:
        cells = variant_cells(variant, pick_id)
        name = _variant_name(variant, cells, pick_id)
        if not variant.measurements or not variant.fidelity:
            rows.append(
                f"<tr class='unmeasured'><td class='text'>{name}</td>"
                f"<td class='reason' colspan='{len(HTML_COLUMNS) - 1}'></td></tr>"
            )
            continue
        css = "pick" if variant.id == pick_id else "outside" if variant.outside_limits else ""
        verdict = cells["within tol."]
        tds = [f"<td class='text'>{name}</td>"]
        tds += [f"<td>{escape(cells[c])}</td>" for c in HTML_COLUMNS[1:-1]]
        tds.append(
            f"<td class='text' title='{escape(verdict)}'>{escape(verdict.split(' ', 1)[0])}</td>"
        )
        row = "".join(tds)
        rows.append(f"<tr class='{css}'>{row}</tr>" if css else f"<tr>{row}</tr>")
    note = (
        "Latency: batch 1, median (p50) and tail percentiles over the timed runs after "
        "warm-up; spread: inter-quartile range over the median; threads: the fastest intra-op "
        "thread count tried; memory: resident-memory growth while the session ran. ★ marks "
        "the pick. Hover a variant for its full chain and status, a verdict for its reason; "
        "report.md and variants.csv hold every column."
    )
    return (
        f"<h2>Variants</h2><div class='scroll'><table><thead><tr>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div><p class='muted small'>{note}</p>"
    )
