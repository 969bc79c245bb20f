"""Results as data: variants.csv on every run, a DataFrame of the candidates, and short
representations for a notebook."""

import csv

import pytest
from figures import QUICK_MEASURE

from optimize import Recipe, run
from optimize.config.chains import Chain
from passes.ort_graph import OrtGraphOptimize
from passes.quantize_int4 import QuantizeInt4


@pytest.fixture(scope="module")
def results(digits_cnn_onnx, tmp_path_factory):
    chains = [
        Chain((OrtGraphOptimize("all"),), "constant folding"),
        # Blocks longer than any of the CNN's weights: int4 skips the variant.
        Chain((QuantizeInt4(block_size=1024),), "int4 weights"),
    ]
    out = tmp_path_factory.mktemp("records") / "out"
    recipe = Recipe(
        model=digits_cnn_onnx, out=out, chains=chains, builtin=False, measure=QUICK_MEASURE
    )
    return run(recipe)


def test_variants_csv_has_a_row_per_candidate_with_its_figures(results):
    with (results.out_dir / "variants.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [r["label"] for r in rows] == [c.label for c in results.variants]
    (picked,) = [r for r in rows if r["picked"] == "True"]
    assert picked["id"] == results.pick.id
    assert float(picked["p50_ms"]) == pytest.approx(results.pick.p50_ms)
    assert float(picked["mean_cosine"]) == pytest.approx(results.pick.fidelity.mean_cosine)
    unmeasured = [r for r in rows if r["status"] != "measured"]
    assert unmeasured and all(r["p50_ms"] == "" and r["reason"] for r in unmeasured)
    listed = (results.out_dir / "manifest.json").read_text()
    assert '"variants.csv"' in listed


def test_to_pandas_is_the_same_table(results):
    frame = results.to_pandas()
    assert len(frame) == len(results.variants)
    assert frame.loc[frame["picked"], "label"].tolist() == [results.pick.label]
    measured = frame[frame["status"] == "measured"]
    assert (measured["p50_ms"] > 0).all() and (measured["size_mb"] > 0).all()


def test_representations_are_short(results):
    text = repr(results)
    assert text.startswith(f"<Results {results.source_path.name} on cpu: ") and len(text) < 300
    assert f"pick {results.pick.label!r}" in text
    assert all(len(repr(c)) < 200 for c in results.variants)
    assert "within the limits" in repr(results.pick)
    html = results._repr_html_()
    assert "<table>" in html and results.pick.label in html
