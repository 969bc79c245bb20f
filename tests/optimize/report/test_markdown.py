"""report.md and report.html with every kind of row: model variants and runtime rows."""

from pathlib import Path

from figures import measured_variant, results_of

from optimize.build.variant import RuntimeRow, Step
from optimize.report.html import render_html
from optimize.report.markdown import render_markdown
from optimize.report.results import Results
from optimize.search.prune_sweep import PruneSweep


def _results(tmp_path: Path) -> Results:
    """A run whose pick is a PyTorch row, beside a magnitude-pruned ONNX variant."""
    metrics = {"sparsity": 0.5, "dense_mb": 1.0, "compressed_mb": 0.6}
    step = Step("prune_magnitude", "prune_magnitude", {}, True, 0.1, "zeroed half", metrics)
    pruned = measured_variant("pruned", 2.0, steps=[step], path=tmp_path / "model.onnx")
    row = RuntimeRow("row", "root", "torch.compile", {"mode": "compile"}, runtime="torch")
    fast = measured_variant("fast", 1.0)
    row.record(fast.measurements, fast.fidelity, None)
    sweep = PruneSweep(note="no ratio stayed within tolerance: nothing pruned is kept")
    return results_of(tmp_path, [pruned, row], row, pruned, prune_sweep=sweep)


def test_a_runtime_row_pick_reports_beside_model_variants(tmp_path):
    results = _results(tmp_path)
    markdown = render_markdown(results)
    assert "**Pick:** `torch.compile` → `torch/torch_pick.json`" in markdown
    assert "Magnitude pruning (prune_magnitude) zeroed 50.0%" in markdown
    page = render_html(results)
    assert "torch.compile" in page and "prune_magnitude" in page
    report = results.to_dict()
    by_id = {v["id"]: v for v in report["variants"]}
    assert by_id["row"]["runtime_settings"] == {"mode": "compile"} and by_id["row"]["path"] is None
    assert by_id["pruned"]["path"] == "model.onnx" and by_id["pruned"]["steps"][0]["name"] == (
        "prune_magnitude"
    )
