"""The run's charts (pareto.png, chain.png, the load chart and the interactive Pareto plot),
drawn, or taken from the last run into the same folder when what they show is unchanged:
drawing loads matplotlib and plotly, most of an unchanged re-run's time."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimize.measure.cache import load_result, store_result
from optimize.report.interactive_plot import pareto_html
from optimize.report.plots import chain_plot, pareto_plot
from optimize.report.results import Results
from optimize.serve.sweep_report import sweep_plot

# What the charts do not show of report.json: when the run ran and how long its stages
# took, whether figures were taken from the folder, and the order chains were tried in and
# what that order made the reasons and warnings say (a re-run may try them in another,
# learned from the run before).
UNSHOWN = ("stage_seconds", "finished_at", "chains", "warnings")
UNSHOWN_OF_VARIANT = ("measurements_cached", "cached", "not_timed_further", "reason")
# The modules that draw, under optimize/: a change to them is a change to the charts.
DRAWING_MODULES = (
    "report/plots.py",
    "report/plot_labels.py",
    "report/interactive_plot.py",
    "report/charts.py",
    "serve/sweep_report.py",
)
CHARTS_FILE = Path("cache") / "charts.json"


@dataclass(frozen=True)
class Charts:
    """PNG bytes of each chart (None where the run has nothing to draw) and the Pareto plot
    as an HTML fragment ("" where there is none)."""

    pareto: bytes | None = None
    chain: bytes | None = None
    load: bytes | None = None
    interactive: str = ""


def draw_charts(results: Results) -> Charts:
    """Every chart of the run, drawn."""
    load = sweep_plot(results.load_sweeps) if results.load_sweeps else None
    return Charts(pareto_plot(results), chain_plot(results), load, pareto_html(results))


def charts_of(results: Results, report: dict[str, Any]) -> Charts:
    """The run's charts (`report` is its report.json): those kept from the last run into
    the folder when its report showed the same, else drawn and kept for the next."""
    path, key = results.out_dir / CHARTS_FILE, _shown(report)
    stored = load_result(path, key)
    if stored is not None:
        return Charts(
            **{name: base64.b64decode(png) for name, png in stored["images"].items()},
            interactive=stored["interactive"],
        )
    charts = draw_charts(results)
    images = {"pareto": charts.pareto, "chain": charts.chain, "load": charts.load}
    kept = {name: base64.b64encode(png).decode("ascii") for name, png in images.items() if png}
    store_result(path, key, {"images": kept, "interactive": charts.interactive})
    return charts


def _shown(report: dict[str, Any]) -> str:
    """A digest of what the charts show: the report but for what they do not show, its
    variants in an order of their own, and the code that draws them."""
    shown = {k: v for k, v in report.items() if k not in UNSHOWN}
    variants = sorted(report.get("variants", []), key=lambda variant: variant["id"])
    shown["variants"] = [
        {k: v for k, v in variant.items() if k not in UNSHOWN_OF_VARIANT} for variant in variants
    ]
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode())
    package = Path(__file__).parents[1]
    for name in DRAWING_MODULES:
        digest.update((package / name).read_bytes())
    return digest.hexdigest()
