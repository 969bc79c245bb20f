"""The report's charts as PNG bytes: latency against quality, and what each pass of the pick did."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from hardware.runtimes.base import RuntimeName
from optimize.build.variant import Variant
from optimize.report.plot_labels import label_points, point_labels
from optimize.report.results import Results

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 110
FONT_PT = 8.5
WITHIN, OUTSIDE, FRONT, PICK = "#2e7d32", "#c62828", "#1565c0", "#f9a825"
MARKERS = {RuntimeName.ONNXRUNTIME: "o", RuntimeName.TORCH: "s"}


def uses_accuracy(results: Results) -> bool:
    """Whether quality is a task metric scored in [0, 1] (the run had labels), charted in
    percent, rather than output cosine."""
    return any(
        v.fidelity.score is not None and v.fidelity.unit_metric for v in measured_variants(results)
    )


def metric_label(results: Results) -> str:
    """The quality axis: the task metric by name, or output cosine."""
    metric = results.eval_data.get("metric")
    if not uses_accuracy(results):
        return "mean output cosine vs original"
    return "top-1 accuracy (%)" if metric == "top1" else f"{metric} (%)"


def quality_value(variant: Variant, accuracy: bool) -> float:
    """Quality on the charts' scale: accuracy in percent, or mean cosine."""
    return 100 * variant.quality if accuracy else variant.quality


def pareto_plot(results: Results) -> bytes:
    """PNG: each measured variant at (median batch-1 latency, quality), the front, the pick."""
    fig = _figure(10, 6.2)
    ax = fig.add_axes((0.09, 0.1, 0.61, 0.8))
    measured = measured_variants(results)
    accuracy = uses_accuracy(results)
    metric = metric_label(results)
    ax.set_title(
        f"{results.source_path.name} on {results.target}: latency vs quality",
        fontsize=11,
        loc="left",
    )
    ax.set_xlabel("median latency at batch 1 (ms)")
    ax.set_ylabel(metric)
    if not measured:
        ax.text(0.5, 0.5, "no variant was measured", ha="center", transform=ax.transAxes)
        return _png(fig)
    xs = [v.p50_ms for v in measured]
    ys = [quality_value(v, accuracy) for v in measured]
    limit = tolerance_limit(results, accuracy)
    _set_limits(ax, xs, ys + ([limit] if limit is not None else []))
    _no_ticks_above(ax, 100.0 if accuracy else 1.0)
    for v, x, y in zip(measured, xs, ys, strict=True):
        color = WITHIN if v.within_tolerance else OUTSIDE
        ax.scatter(
            x,
            y,
            s=46,
            marker=MARKERS.get(v.runtime, "D"),
            color=color,
            edgecolor="white",
            linewidth=0.7,
            zorder=3,
        )
    front = latency_quality_front(measured)
    if front:
        fx = [v.p50_ms for v in front] + [ax.get_xlim()[1]]
        fy = [quality_value(v, accuracy) for v in front]
        ax.step(fx, fy + fy[-1:], where="post", color=FRONT, lw=1.6, alpha=0.8, zorder=2)
    if limit is not None:
        ax.axhline(limit, color=OUTSIDE, lw=1, ls="--", alpha=0.7, zorder=1)
        ax.axhspan(ax.get_ylim()[0], limit, color=OUTSIDE, alpha=0.06, lw=0, zorder=0)
    pick = results.pick if results.pick in measured else None
    if pick is not None:
        ax.scatter(
            pick.p50_ms,
            quality_value(pick, accuracy),
            s=420,
            marker="*",
            color=PICK,
            edgecolor="black",
            linewidth=0.8,
            zorder=2.5,  # behind the points, which stay visible on it
        )
    labels = point_labels(results)
    label_points(fig, ax, measured, xs, ys, pick, labels, FONT_PT, OUTSIDE)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(
        handles=_legend_handles(results, measured, limit is not None, pick is not None),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=FONT_PT,
        frameon=False,
    )
    ax.text(
        1.02,
        0.0,
        _caption(results),
        transform=ax.transAxes,
        fontsize=FONT_PT - 0.5,
        va="bottom",
        wrap=True,
        color="#444444",
    )
    return _png(fig)


def pick_chain(results: Results) -> list[Variant]:
    """The measured variants along the pick's lineage, the shortest prefix first."""
    pick = results.pick
    if not isinstance(pick, Variant) or not pick.steps:
        return []
    by_id = {v.id: v for v in results.model_variants}
    chain = [pick]
    while chain[-1].parent in by_id:
        chain.append(by_id[chain[-1].parent])
    chain.reverse()
    # A prefix that was not measured (or an ancestor on another runtime) has no figures.
    return [v for v in chain if v.measured and v.runtime == pick.runtime]


def chain_plot(results: Results) -> bytes | None:
    """PNG: latency and quality after each pass of the pick's chain; None without steps."""
    chain = pick_chain(results)
    if not chain:
        return None
    accuracy = uses_accuracy(results)
    names = [_step_name(v, prev) for prev, v in zip([None, *chain], chain, strict=False)]
    width = max(6.0, 1.6 * len(chain) + 3.0)
    left, right = 1.1 / width, 1 - 0.3 / width  # a fixed inch margin for the tick labels
    fig = _figure(width, 5.4)
    top = fig.add_axes((left, 0.5, right - left, 0.38))
    bottom = fig.add_axes((left, 0.12, right - left, 0.3))
    positions = range(len(chain))
    latencies = [v.p50_ms for v in chain]
    bars = top.bar(positions, latencies, color=FRONT, alpha=0.75, width=0.55)
    bars[-1].set_color(PICK)
    for bar, v, prev in zip(bars, chain, [None, *chain], strict=False):
        ratio = 0.0 if prev is None else v.p50_ms / prev.p50_ms - 1
        change = "" if prev is None else f"\n{ratio:+.{1 if abs(ratio) < 0.1 else 0}%}"
        top.annotate(
            f"{_ms(v.p50_ms)} ms{change}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=FONT_PT,
        )
    top.set_ylim(0, max(latencies) * 1.35)
    top.set_ylabel("median latency (ms)")
    top.set_xticks(list(positions), [""] * len(chain))
    top.set_title(
        f"{results.source_path.name} on {results.target}: the pick, pass by pass",
        fontsize=11,
        loc="left",
    )
    # A prefix too slow to win had its outputs left unjudged: no point of its own.
    values = [quality_value(v, accuracy) if v.fidelity else math.nan for v in chain]
    bottom.plot(list(positions), values, marker="o", color=FRONT)
    bottom.scatter(positions[-1], values[-1], s=200, marker="*", color=PICK, zorder=3)
    judged = [(x, y) for x, y in zip(positions, values, strict=True) if not math.isnan(y)]
    for x, y in judged:
        bottom.annotate(
            f"{y:.2f}" if accuracy else f"{y:.6f}",
            (x, y),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            fontsize=FONT_PT,
        )
    low, high = min(y for _, y in judged), max(y for _, y in judged)
    pad = max(high - low, 0.5 if accuracy else 1e-4)
    bottom.set_ylim(low - 0.4 * pad, high + 0.6 * pad)
    bottom.ticklabel_format(axis="y", useOffset=False)
    _no_ticks_above(bottom, 100.0 if accuracy else 1.0)
    bottom.set_xlim(-0.6, len(chain) - 0.4)
    bottom.set_ylabel("accuracy (%)" if accuracy else "mean cosine")
    bottom.set_xticks(list(positions), names, fontsize=FONT_PT)
    top.set_xlim(bottom.get_xlim())
    for ax in (top, bottom):
        ax.grid(True, axis="y", alpha=0.25)
    return _png(fig)


def _step_name(variant: Variant, previous: Variant | None) -> str:
    """What this prefix added: its last step, or 'original' for the ONNX source."""
    if not variant.steps:
        return "original"
    name = variant.steps[-1].label
    name = name if len(name) <= 28 else name[:27] + "…"
    return name if previous is None else f"+ {name}"


def measured_variants(results: Results) -> list[Variant]:
    """The variants and rows with figures to chart: measured, with a latency and fidelity."""
    return [v for v in results.variants if v.measured and v.p50_ms and v.fidelity]


def latency_quality_front(variants: list[Variant]) -> list[Variant]:
    """The 2-D front the charts draw, fastest first: each variant of higher quality than
    every faster one (size aside, so the line rises monotonically)."""
    front: list[Variant] = []
    for variant in sorted(variants, key=lambda v: (v.p50_ms, -v.quality)):
        if not front or variant.quality > front[-1].quality:
            front.append(variant)
    return front


def tolerance_limit(results: Results, accuracy: bool) -> float | None:
    """The lowest quality still within tolerance, on the chart's scale."""
    if not accuracy:
        return results.tolerance.min_cosine
    references = [v.fidelity.reference_score for v in measured_variants(results)]
    reference = next((r for r in references if r is not None), None)
    return None if reference is None else 100 * reference - results.tolerance.max_accuracy_drop


def _set_limits(ax: Axes, xs: list[float], ys: list[float]) -> None:
    """Log latency when it spans more than 10×; room around the points for labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    low, high = min(xs), max(xs)
    if high > 10 * low > 0:
        ax.set_xscale("log")
        ax.set_xlim(low / 1.5, high * 2.5)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        span = (high - low) or high or 1.0
        ax.set_xlim(max(0.0, low - 0.15 * span), high + 0.6 * span)
    bottom, top = min(ys), max(ys)
    pad = (top - bottom) or abs(top) * 1e-3 or 1.0
    ax.set_ylim(bottom - 0.3 * pad, top + 0.25 * pad)
    ax.ticklabel_format(axis="y", useOffset=False)


def _no_ticks_above(ax: Axes, best: float) -> None:
    """No tick for a quality past the best possible (accuracy 100%, cosine 1)."""
    low, high = ax.get_ylim()
    ax.set_yticks([t for t in ax.get_yticks() if low <= t <= best + 1e-12])
    ax.set_ylim(low, high)


def _legend_handles(
    results: Results, measured: list[Variant], limit: bool, pick: bool
) -> list[object]:
    from matplotlib.lines import Line2D

    def dot(color: str, marker: str, label: str, size: float = 7) -> Line2D:
        return Line2D([], [], ls="", marker=marker, color=color, markersize=size, label=label)

    handles = [dot(WITHIN, "o", "within tolerance"), dot(OUTSIDE, "o", "outside tolerance")]
    runtimes = sorted({v.runtime for v in measured})
    if len(runtimes) > 1:
        handles += [
            dot(
                "#777777",
                MARKERS.get(r, "D"),
                "ONNX Runtime" if r == RuntimeName.ONNXRUNTIME else r,
            )
            for r in runtimes
        ]
    handles.append(Line2D([], [], color=FRONT, lw=1.6, label="Pareto front"))
    if limit:
        handles.append(
            Line2D([], [], color=OUTSIDE, lw=1, ls="--", label="tolerance limit (below: out)")
        )
    if pick:
        handles.append(dot(PICK, "*", "pick", 14))
    return handles


def _caption(results: Results) -> str:
    pick = results.pick
    lines = [f"pick: {pick.label}" if pick else "nothing within tolerance"]
    baseline = results.baseline
    if pick and baseline and baseline.p50_ms and pick.p50_ms:
        lines.append(
            f"{_ms(pick.p50_ms)} ms, {baseline.p50_ms / pick.p50_ms:.2f}× the baseline "
            f"({_ms(baseline.p50_ms)} ms)"
        )
    tol = results.tolerance
    lines.append(
        f"tolerance: accuracy drop <= {tol.max_accuracy_drop:g} points"
        if uses_accuracy(results)
        else f"tolerance: mean cosine >= {tol.min_cosine:g}"
    )
    return "\n".join(lines)


def _ms(value: float) -> str:
    """Three significant digits, trailing zeros kept: 0.0241, 0.200, 12.5, 130."""
    return f"{value:#.3g}" if value < 99.95 else f"{value:.0f}"


def _figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, outside pyplot: no GUI backend, no global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
