"""The run's charts are drawn again only when what they show changed."""

import dataclasses
import shutil

import pytest

from optimize.report import charts
from optimize.report.charts import charts_of, draw_charts


@pytest.fixture
def own(finished, tmp_path):
    """The shared run's results, writing into a folder of this test's own."""
    shutil.copytree(finished.out_dir, tmp_path / "out")
    (tmp_path / "out" / "cache" / "charts.json").unlink(missing_ok=True)
    return dataclasses.replace(finished, out_dir=tmp_path / "out")


def _undrawable(results):
    raise AssertionError("drawn again")


def test_a_report_that_shows_the_same_takes_the_charts_kept(own, monkeypatch):
    report = own.to_dict()
    drawn = charts_of(own, report)
    assert drawn.pareto.startswith(b"\x89PNG") and "plotly" in drawn.interactive
    # Another run that measured nothing anew: other times, reuse marks and chain order.
    again = {**report, "stage_seconds": {"loading the model": 9.9}, "finished_at": "later"}
    again["chains"] = list(reversed(report["chains"]))
    again["variants"] = [{**v, "measurements_cached": True} for v in reversed(report["variants"])]
    monkeypatch.setattr(charts, "draw_charts", _undrawable)
    assert charts_of(own, again) == drawn


def test_a_figure_that_changed_draws_the_charts_again(own, monkeypatch):
    report = own.to_dict()
    charts_of(own, report)
    first = report["variants"][0]
    larger = {**first["measurements"], "size_mb": first["measurements"]["size_mb"] * 2}
    changed = {**report, "variants": [{**first, "measurements": larger}, *report["variants"][1:]]}
    calls = []
    monkeypatch.setattr(charts, "draw_charts", lambda results: calls.append(results) or drawn)
    drawn = draw_charts(own)
    assert charts_of(own, changed) == drawn and calls == [own]
