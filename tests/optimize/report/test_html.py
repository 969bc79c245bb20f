"""report.html and pareto.png from a real run: written whole, listed in the manifest, readable."""

import dataclasses
import hashlib
import html
import io
import json
import re

import numpy as np
import pytest
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from optimize.report.html import render_html
from optimize.report.plots import chain_plot, pick_chain
from passes.ort_graph import OrtGraphOptimize
from passes.quantize_static import QuantizeStatic

QUICK = {**QUICK_MEASURE, "threads": (1,)}  # one thread setting: half the timing
# Every prefix is a variant: the original, folded, and folded then quantized.
CHAINS = [Chain((OrtGraphOptimize("basic"), QuantizeStatic()), "int8 after folding")]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, digits, digits_cnn_onnx):
    """One real run on the exported digits CNN, with labelled evaluation data."""
    folder = tmp_path_factory.mktemp("html")
    model = digits_cnn_onnx
    np.savez(folder / "eval.npz", x=digits.test_x[:200], labels=digits.test_y[:200])
    np.savez(folder / "calibration.npz", x=digits.train_x[:128])
    results = run(
        Recipe(
            model=model,
            out=folder / "out",
            data={"eval": folder / "eval.npz", "calibration": folder / "calibration.npz"},
            chains=CHAINS,
            builtin=False,
            measure=QUICK,
        )
    )
    return results


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
    assert "data:image/png;base64," in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", page, re.I)
    assert "<script" not in page


def test_chain_plot_follows_each_prefix_of_a_chain(finished):
    quantized = next(
        v for v in finished.variants if v.steps and v.steps[-1].name == "quantize_static"
    )
    as_pick = dataclasses.replace(finished, pick=quantized)
    assert [len(v.steps) for v in pick_chain(as_pick)] == [0, 1, 2]
    width, height = _png_size(chain_plot(as_pick))
    assert width >= 400 and height >= 300
    original = next(v for v in finished.variants if not v.steps)
    assert chain_plot(dataclasses.replace(finished, pick=original)) is None


def test_text_from_the_run_is_escaped(finished):
    hostile = dataclasses.replace(finished, warnings=["<script>alert(1)</script> & more"])
    page = render_html(hostile, {})
    assert "<script>" not in page
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
