"""The latency-quality chart of report.html, interactive: plotly, with its JavaScript in the
page so the file works offline. Hovering a point shows its full chain and figures; marker
area shows size; the 2-D front, the tolerance band and the pick are drawn."""

from __future__ import annotations

from html import escape

from hardware.runtimes.base import RuntimeName
from optimize.build.variant import Variant
from optimize.report.plot_labels import point_labels
from optimize.report.plots import (
    FRONT,
    OUTSIDE,
    PICK,
    WITHIN,
    latency_quality_front,
    measured_variants,
    metric_label,
    quality_value,
    tolerance_limit,
    uses_accuracy,
)
from optimize.report.results import Results

# The id of the chart's element in the page (checked by the browser test).
PLOT_ID = "pareto-plot"
SYMBOLS = {
    RuntimeName.ONNXRUNTIME: "circle",
    RuntimeName.TORCH: "square",
    RuntimeName.OPENVINO: "diamond",
}
# Marker diameter, in pixels, of the largest model; others scale by area.
LARGEST_MARKER_PX = 34
SMALLEST_MARKER_PX = 7


def _hover(variant: Variant, quality: float, accuracy: bool) -> str:
    figures = variant.measurements
    unit = "%" if accuracy else ""
    lines = [
        f"<b>{escape(variant.label)}</b>",
        f"runtime: {escape(variant.runtime)}",
        f"p50 {variant.p50_ms:.3f} ms, p99 {figures.latency.p99_ms:.3f} ms at batch 1",
        f"{figures.throughput_per_s:,.0f} items/s at batch {figures.throughput_batch}",
        f"quality {quality:.4f}{unit}",
        f"size {figures.size_mb:.2f} MB",
        "within tolerance"
        if variant.within_tolerance
        else f"outside: {escape(variant.verdict or '')}",
    ]
    return "<br>".join(lines)


def _marker_px(size_mb: float, largest_mb: float) -> float:
    """Diameter in pixels so that marker area is proportional to size."""
    share = (size_mb / largest_mb) ** 0.5 if largest_mb > 0 else 1.0
    return max(SMALLEST_MARKER_PX, LARGEST_MARKER_PX * share)


def pareto_html(results: Results) -> str:
    """The chart as an HTML fragment (a div and its script, plotly.js included); empty when
    nothing was measured."""
    import plotly.graph_objects as go

    measured = measured_variants(results)
    if not measured:
        return ""
    accuracy = uses_accuracy(results)
    labels = point_labels(results)
    largest = max(v.size_mb or 0.0 for v in measured)
    fig = go.Figure()
    for within in (True, False):
        group = [v for v in measured if v.within_tolerance == within]
        if not group:
            continue
        fig.add_trace(
            go.Scatter(
                x=[v.p50_ms for v in group],
                y=[quality_value(v, accuracy) for v in group],
                mode="markers",
                name="within tolerance" if within else "outside tolerance",
                text=[labels.get(v.id, v.label) for v in group],
                hovertext=[_hover(v, quality_value(v, accuracy), accuracy) for v in group],
                hoverinfo="text",
                marker={
                    "color": WITHIN if within else OUTSIDE,
                    "size": [_marker_px(v.size_mb or 0.0, largest) for v in group],
                    "symbol": [SYMBOLS.get(v.runtime, "triangle-up") for v in group],
                    "opacity": 0.75,
                    "line": {"color": "white", "width": 1},
                },
            )
        )
    front = latency_quality_front(measured)
    fig.add_trace(
        go.Scatter(
            x=[v.p50_ms for v in front],
            y=[quality_value(v, accuracy) for v in front],
            mode="lines",
            line={"color": FRONT, "width": 2, "shape": "hv"},
            name="latency-quality front",
            hoverinfo="skip",
        )
    )
    pick = results.pick if results.pick in measured else None
    if pick is not None:
        fig.add_trace(
            go.Scatter(
                x=[pick.p50_ms],
                y=[quality_value(pick, accuracy)],
                mode="markers+text",
                name="pick",
                text=[f"pick: {labels.get(pick.id, pick.label)}"],
                textposition="bottom right",
                hovertext=[_hover(pick, quality_value(pick, accuracy), accuracy)],
                hoverinfo="text",
                marker={
                    "symbol": "star",
                    "size": 22,
                    "color": PICK,
                    "line": {"color": "black", "width": 1},
                },
            )
        )
    limit = tolerance_limit(results, accuracy)
    if limit is not None:
        lowest = min([limit, *(quality_value(v, accuracy) for v in measured)])
        fig.add_hrect(
            y0=lowest - abs(limit - lowest) * 0.05 - 1e-9,
            y1=limit,
            fillcolor=OUTSIDE,
            opacity=0.07,
            line_width=0,
            layer="below",
        )
        fig.add_hline(y=limit, line={"color": OUTSIDE, "dash": "dash", "width": 1})
    spread = max(v.p50_ms for v in measured) / min(v.p50_ms for v in measured)
    fig.update_layout(
        xaxis={
            "title": "median latency at batch 1 (ms)",
            "type": "log" if spread > 10 else "linear",
        },
        yaxis={"title": metric_label(results)},
        height=460,
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        legend={"orientation": "h", "y": -0.18},
        template="plotly_white",
        hoverlabel={"align": "left"},
    )
    return fig.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id=PLOT_ID,
        config={"displaylogo": False, "responsive": True},
    )
