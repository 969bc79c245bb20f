"""Labels for chart points: short names, and places beside the points where no label
covers another label or a point."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimize.build.variant import Variant
from optimize.report.results import Results

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_LABEL = 42
GAP = 5.0  # points of space kept either side of a label, so two never read as one


def short_label(variant: Variant) -> str:
    """The label without the 'export → ' every exported chain starts with, cut to fit."""
    label = variant.label.removeprefix("export → ")
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def point_labels(results: Results) -> dict[str, str]:
    """Short labels by variant id; a step of the accuracy fallback is named after the
    variant it repairs and how many nodes it keeps in float."""
    labels = {v.id: short_label(v) for v in results.variants}
    for record in results.repairs:
        repaired = labels.get(record.variant_id, record.variant_id)
        for step in record.steps:
            labels[step.variant_id] = f"{repaired} +{len(step.excluded)} in float"
    return labels


def label_points(
    fig: Figure,
    ax: Axes,
    variants: list[Variant],
    xs: list[float],
    ys: list[float],
    pick: Variant | None,
    labels: dict[str, str],
    font_pt: float,
    outside_color: str,
) -> None:
    """Short labels beside the points, moved up or down (with a leader line) where they
    would cover another label or a point; the pick's label is bold and placed first."""
    to_pt = 72 / fig.dpi
    line = font_pt * 1.5
    points = [ax.transData.transform((x, y)) * to_pt for x, y in zip(xs, ys, strict=True)]
    box = ax.get_window_extent()
    bounds = (box.x0 * to_pt, box.y0 * to_pt, box.x1 * to_pt, box.y1 * to_pt)
    # Markers are obstacles too: a label must not hide a point.
    taken = [(px - 5, py - 5, 10, 10) for px, py in points]
    for (px, py), v in zip(points, variants, strict=True):
        if pick is not None and v.id == pick.id:
            taken.append((px - 9, py - 9, 18, 18))
    order = sorted(range(len(variants)), key=lambda i: (points[i][0], -points[i][1]))
    if pick is not None:
        order.sort(key=lambda i: variants[i].id != pick.id)
    for i in order:
        v = variants[i]
        is_pick = pick is not None and v.id == pick.id
        text = ("pick: " if is_pick else "") + labels[v.id]
        width = len(text) * font_pt * (0.64 if is_pick else 0.58)
        px, py = points[i]
        dx, dy = _free_spot(taken, px, py, width, line, bounds, 12.0 if is_pick else 8.0)
        left = px + dx if dx > 0 else px + dx - width
        taken.append((left - GAP, py + dy - line / 2, width + 2 * GAP, line))
        ax.annotate(
            text,
            (xs[i], ys[i]),
            xytext=(dx, dy),
            textcoords="offset points",
            va="center",
            ha="left" if dx > 0 else "right",
            fontsize=font_pt,
            fontweight="bold" if is_pick else "normal",
            color="black" if v.within_tolerance else outside_color,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
            # The leader line leaves the label's near end, so lines in a stack do not cross.
            arrowprops={
                "arrowstyle": "-",
                "color": "#888888",
                "lw": 0.6,
                "shrinkA": 1,
                "shrinkB": 3,
                "relpos": (0.0, 0.5) if dx > 0 else (1.0, 0.5),
            }
            if dy
            else None,
            zorder=5,
        )


def _free_spot(
    taken: list[tuple[float, float, float, float]],
    px: float,
    py: float,
    width: float,
    height: float,
    bounds: tuple[float, float, float, float],
    gap: float,
) -> tuple[float, float]:
    """The nearest offset (points) right of the point, else left, where a label of this
    size covers nothing taken and stays inside the axes."""
    x0, y0, x1, y1 = bounds
    for shift in range(60):
        for dy in (shift * height, -shift * height) if shift else (0.0,):
            for dx in (gap, -gap):
                left = px + dx if dx > 0 else px + dx - width
                bottom = py + dy - height / 2
                if left < x0 or left + width > x1 or bottom < y0 or bottom + height > y1:
                    continue
                if not any(_overlaps((left, bottom, width, height), r) for r in taken):
                    return dx, dy
    return gap, 0.0


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    return ax0 < bx0 + bw and bx0 < ax0 + aw and ay0 < by0 + bh and by0 < ay0 + ah
