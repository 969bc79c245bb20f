"""A .pt2 whose dynamic batch has a declared upper bound (Dim("batch", max=N)): every
measurement and evaluation stays within it, and the report says throughput used it."""

import numpy as np
import torch
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from optimize.source.load import load_source
from passes.ort_graph import OrtGraphOptimize

MAX_ROWS = 8


def test_a_bounded_batch_is_respected_and_reported(digits, digits_cnn, tmp_path):
    program = torch.export.export(
        digits_cnn,
        (torch.from_numpy(digits.test_x[:2]),),
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=MAX_ROWS)},),
    )
    torch.export.save(program, tmp_path / "cnn.pt2")
    assert load_source(tmp_path / "cnn.pt2").max_batch == MAX_ROWS
    np.savez(tmp_path / "eval.npz", x=digits.test_x[:100], labels=digits.test_y[:100])
    results = run(
        Recipe(
            model=tmp_path / "cnn.pt2",
            out=tmp_path / "out",
            data={"eval": tmp_path / "eval.npz"},
            chains=[Chain((OrtGraphOptimize("all"),), "fused for this CPU")],
            builtin=False,
            measure=QUICK_MEASURE,
        )
    )
    measured = [v for v in results.variants if v.measured]
    assert results.pick is not None and len(measured) >= 2
    # Screened-only rows keep screening's batch-1 figure; whatever was timed in full used the bound.
    assert all(v.measurements.throughput_batch <= MAX_ROWS for v in measured)
    assert {v.measurements.throughput_batch for v in measured if v.timing == "full"} == {MAX_ROWS}
    # Judged over every row, a batch at a time (one screened too slow to win is not judged).
    judged = [v for v in measured if v.fidelity]
    assert results.pick in judged and all(v.fidelity.samples == 100 for v in judged)
    assert any(f"at most {MAX_ROWS} rows" in w for w in results.warnings)
