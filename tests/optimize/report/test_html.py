"""report.html and pareto.png from a real run: written whole, listed in the manifest, readable."""

import dataclasses
import hashlib
import html
import io
import json
import re

import pytest

from optimize.report.html import render_html
from optimize.report.plots import chain_plot, pick_chain


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header, after checking its signature."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_report_html_and_pareto_png_are_published_in_the_manifest(finished):
    out = finished.out_dir
    manifest = {a["path"]: a for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    for name in ("report.html", "pareto.png"):
        data = (out / name).read_bytes()
        assert manifest[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest[name]["bytes"] == len(data)


def test_pareto_png_is_an_image_of_sensible_size(finished):
    import matplotlib.image

    data = (finished.out_dir / "pareto.png").read_bytes()
    width, height = _png_size(data)
    assert 600 <= width <= 2400 and 400 <= height <= 1600
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.05  # not a blank canvas


def test_report_html_names_every_variant_and_needs_nothing_outside(finished):
    page = (finished.out_dir / "report.html").read_text()
    assert finished.pick is not None
    assert html.escape(finished.pick.label) in page
    for variant in finished.variants:
        assert html.escape(variant.label) in page
    # The chart's JavaScript is in the page: it opens offline. Outside the scripts, nothing
    # is loaded from elsewhere.
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts and not any("src=" in attributes for attributes in scripts)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", markup, re.I)
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", markup, re.I)
    assert 'id="pareto-plot"' in page


def test_chain_plot_follows_each_prefix_of_a_chain(finished):
    # As deep as the search went: a step clearly beaten twice ends its chain.
    deepest = max((v for v in finished.variants if v.measured), key=lambda v: len(v.steps))
    as_pick = dataclasses.replace(finished, pick=deepest)
    assert [len(v.steps) for v in pick_chain(as_pick)] == list(range(len(deepest.steps) + 1))
    width, height = _png_size(chain_plot(as_pick))
    assert width >= 400 and height >= 300
    original = next(v for v in finished.variants if not v.steps)
    assert chain_plot(dataclasses.replace(finished, pick=original)) is None


def test_text_from_the_run_is_escaped(finished):
    hostile = dataclasses.replace(finished, warnings=["<script>alert(1)</script> & more"])
    page = render_html(hostile)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page


def test_head_to_head_is_in_both_reports_when_there_was_one(finished):
    page = (finished.out_dir / "report.html").read_text()
    text = (finished.out_dir / "report.md").read_text()
    if finished.contest is None:
        assert "Head to head" not in page and "## Head to head" not in text
        return
    for entry in finished.contest.entries:
        assert html.escape(entry["label"]) in page.split("<h2>Head to head</h2>")[1]
    assert f"{finished.contest.rounds} interleaved rounds" in page
    assert "## Head to head" in text and "| picked" in text


def test_the_first_screen_has_the_pick_against_the_baseline_and_the_chart(finished):
    page = (finished.out_dir / "report.html").read_text()
    first = page.split("<h2>")[0]
    assert "the speed of the baseline" in first and 'id="pareto-plot"' in first
    for figure in ("latency p50, batch 1", "throughput", "quality", "size"):
        assert f"<dt>{figure}</dt>" in first
    assert f"optimize {finished.environment['versions']['optimize']}" in first
    assert f"finished {finished.finished_at[:10]}" in first


def test_warnings_are_grouped_by_kind_with_counts_and_folded(finished):
    warnings = [
        "noisy latency (spread over 15% of the median): a (20%); measure longer",
        "export → quantize_static: 2.74× slower than export: ... in conversions; ...",
        "export → quantize_dynamic: 1.5× slower than export: ... in conversions; ...",
        "fidelity is measured on generated inputs, not real data: pass --eval-data",
    ]
    page = render_html(dataclasses.replace(finished, warnings=warnings))
    assert "<h2>Warnings (4)</h2>" in page
    assert "⚠ slower after lowering precision (2)</summary>" in page
    assert "⚠ noisy latency (1)</summary>" in page
    assert "⚠ evaluation and calibration data (1)</summary>" in page
    assert page.count("<details class='warnings'>") == 3


def test_the_report_renders_in_chromium_at_1366_px(finished, tmp_path):
    """In a real headless Chromium: no console errors, the chart draws a point per
    measured variant, and nothing is wider than a 1366 px screen."""
    from browser import chromium

    measured = [v for v in finished.variants if v.measured and v.p50_ms and v.fidelity]
    with chromium(tmp_path, width=1366) as driver:
        driver.get((finished.out_dir / "report.html").as_uri())
        points = driver.execute_script(
            "return document.querySelectorAll('#pareto-plot .scatterlayer .point').length"
        )
        # One point per measured variant, and the pick's star on top of its point.
        assert points == len(measured) + (finished.pick is not None)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 1366
        table = driver.execute_script(
            "const t = document.querySelector('.scroll table');"
            "return [t.scrollWidth, t.parentElement.clientWidth];"
        )
        assert table[0] <= table[1]
        hover = driver.execute_script(
            "return document.getElementById('pareto-plot').data"
            ".flatMap(t => t.hovertext || []).join('\\n');"
        )
        assert html.escape(finished.pick.label) in hover or finished.pick.label in hover


def test_the_headline_speed_up_is_the_head_to_heads_when_both_raced(finished):
    from optimize.choose.contest import Contest

    baseline = finished.baseline
    other = next(v for v in finished.variants if v is not baseline and v.measured)
    apart = dataclasses.replace(finished, pick=other, contest=None).speedup
    assert apart.ratio == pytest.approx(baseline.p50_ms / other.p50_ms)
    assert not apart.head_to_head
    common = {"spread": 0.01, "runs": 90, "round_medians_ms": [1.0] * 9, "tie": True}
    entries = [
        {
            **common,
            "id": v.id,
            "label": v.label,
            "p50_ms": p50,
            "slower_by": slower,
            "rounds_beaten_by_fastest": beaten,
            "quality": v.quality,
            "size_mb": v.size_mb,
        }
        for v, p50, slower, beaten in ((baseline, 0.996, 0.0, 0), (other, 1.0, 0.004, 4))
    ]
    raced = dataclasses.replace(
        finished, pick=other, contest=Contest(9, entries, baseline.id, other.id)
    )
    speedup = raced.speedup
    assert speedup.ratio == pytest.approx(0.996) and speedup.head_to_head and speedup.tie
    assert speedup.describe() == "a tie with the baseline (1.00×, head to head)"
    page = render_html(raced)
    assert "a tie within noise" in page and "timed head to head" in page
    assert "0.996 ms" in page.split("<h2>")[0]
