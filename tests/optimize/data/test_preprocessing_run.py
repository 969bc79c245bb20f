"""A tabular model trained with preprocessing: every variant carries the preprocessing, and
accuracy is measured on raw features through the whole artifact."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from optimize.errors import UserError
from optimize.examples import (
    TABULAR_PREPROCESSING,
    tabular_data,
    top1_accuracy,
    train_tabular_mlp,
)
from passes.preprocess_spec import apply_numpy, fit, parse_preprocessing
from passes.quantize_static import QuantizeStatic

QUICK = QUICK_MEASURE


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tabular")
    data = tabular_data()
    spec = parse_preprocessing(TABULAR_PREPROCESSING)
    fitted = fit(spec, {"x": data.train_x})
    model = train_tabular_mlp(apply_numpy(fitted, {"x": data.train_x})["x"], data.train_y)
    sample = torch.from_numpy(apply_numpy(fitted, {"x": data.test_x[:2]})["x"])
    program = torch.export.export(
        model, (sample,), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, folder / "mlp.pt2")
    np.savez(folder / "eval.npz", x=data.test_x, labels=data.test_y)
    np.savez(folder / "train.npz", x=data.train_x)
    with torch.no_grad():
        logits = model(torch.from_numpy(apply_numpy(fitted, {"x": data.test_x})["x"])).numpy()
    return folder, spec, data, top1_accuracy(logits, data.test_y)


def test_artifact_on_raw_features_matches_pytorch_with_numpy_preprocessing(tabular, tmp_path):
    folder, spec, data, torch_accuracy = tabular
    assert np.isnan(data.test_x).any() and np.isinf(data.test_x).any()
    recipe = Recipe(
        model=folder / "mlp.pt2",
        out=tmp_path,
        data={"eval": folder / "eval.npz", "calibration": folder / "train.npz"},
        chains=[Chain((), "baseline"), Chain((QuantizeStatic(),), "static int8")],
        builtin=False,
        measure=QUICK,
        preprocess={"steps": spec, "fit": folder / "train.npz"},
    )
    results = run(recipe)
    measured = [v for v in results.variants if v.status == "measured"]
    assert len(measured) == 2
    for variant in measured:
        assert [s.name for s in variant.steps[:2]] == ["export", "preprocess"]
    baseline = results.variant(measured[0].id)
    assert baseline.fidelity.score == pytest.approx(torch_accuracy)
    assert baseline.fidelity.reference_score == pytest.approx(torch_accuracy)
    # The served file takes the raw features, NaN and inf included.
    session = ort.InferenceSession(str(tmp_path / "best.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"x": data.test_x})
    assert np.isfinite(logits).all()
    assert top1_accuracy(logits, data.test_y) == pytest.approx(torch_accuracy, abs=0.01)
    assert "preprocess" in (tmp_path / "report.md").read_text()


def test_unfitted_preprocessing_without_fit_data_is_refused(tabular, tmp_path):
    folder, spec, _, _ = tabular
    with pytest.raises(UserError, match="need statistics"):
        run(Recipe(model=folder / "mlp.pt2", out=tmp_path, preprocess={"steps": spec}))
