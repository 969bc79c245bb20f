"""Export of real PyTorch models to ONNX: valid files, dynamic batch, parity, clear failures."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from hardware.session import open_session, run_session
from hardware.targets import Target
from passes.base import PassContext, PassError, TensorSpec
from passes.export import ExportToOnnx
from passes.torch_run import run_torch

IMAGE = [TensorSpec("x", ("batch", 1, 8, 8))]
SEQUENCE = [TensorSpec("x", ("batch", 16, 64))]


def export(tmp_path, model, inputs, samples=None, **options):
    ctx = PassContext(Target("cpu"), inputs, samples or {}, model)
    return ExportToOnnx(**options).apply(tmp_path / "src.pt", tmp_path / "out", ctx)


def assert_runs_like_torch(path, model, inputs, batch):
    rng = np.random.default_rng(batch)
    feeds = {
        s.name: rng.standard_normal(s.concrete_shape(batch)).astype(np.float32) for s in inputs
    }
    got = run_session(open_session(path, Target("cpu")), feeds)
    want = run_torch(model, feeds, inputs)
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-3)


@pytest.fixture(params=["module", "script_module", "exported_program", "transformer"])
def case(request, digits_cnn, digits, tiny_transformer):
    """(model to export, the nn.Module it computes, input spec, sample inputs, the exporter
    `auto` should pick)."""
    samples = {"x": digits.test_x[:16]}
    if request.param == "module":
        return digits_cnn, digits_cnn, IMAGE, samples, "dynamo"
    if request.param == "script_module":
        return torch.jit.script(digits_cnn), digits_cnn, IMAGE, samples, "torchscript"
    if request.param == "exported_program":
        # Static shapes, as torch.export gives by default: the pass makes the batch dynamic.
        program = torch.export.export(digits_cnn, (torch.from_numpy(digits.test_x[:2]),))
        return program, digits_cnn, IMAGE, samples, "dynamo"
    return tiny_transformer, tiny_transformer, SEQUENCE, {}, "dynamo"


def test_export_is_valid_dynamic_and_matches_torch(case, tmp_path):
    model, reference, inputs, samples, exporter = case

    outcome = export(tmp_path, model, inputs, samples)

    assert outcome.path == tmp_path / "out" / "model.onnx"
    assert outcome.changed
    assert [p.name for p in outcome.path.parent.iterdir()] == ["model.onnx"]
    onnx.checker.check_model(str(outcome.path), full_check=True)
    for batch in (1, 5):
        assert_runs_like_torch(outcome.path, reference, inputs, batch)
    assert outcome.metrics["parity_ok"] == 1.0
    assert outcome.metrics["parity_max_abs_error"] < 1e-4
    assert outcome.metrics["parity_max_rel_error"] < 1e-3
    assert f"{exporter} exporter" in outcome.note
    assert "dynamic batch" in outcome.note


def test_export_prints_nothing(digits_cnn, tmp_path, capfd):
    export(tmp_path, digits_cnn, IMAGE)

    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_fixed_batch_stays_fixed(digits_cnn, tmp_path):
    outcome = export(tmp_path, digits_cnn, IMAGE, dynamic_batch=False)

    dims = onnx.load(str(outcome.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 1, 8, 8]
    assert "fixed shapes" in outcome.note


class RandomNoise(nn.Module):
    """Exports fine, but ONNX Runtime draws different random numbers than torch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def test_parity_failure_is_reported_not_raised(tmp_path):
    outcome = export(tmp_path, RandomNoise(), [TensorSpec("x", ("batch", 8))])

    assert outcome.metrics["parity_ok"] == 0.0
    assert outcome.metrics["parity_max_abs_error"] > 1e-4
    assert outcome.note.startswith("parity check FAILED: max abs error")


class Eigenvalues(nn.Module):
    """No ONNX operator computes eigenvalues, and neither exporter has a decomposition."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigh(x @ x.transpose(-1, -2)).eigenvalues


class DataDependentBranch(nn.Module):
    """Python control flow on a tensor's value, which torch.export cannot trace."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x - 1


@pytest.mark.parametrize(
    ("model", "exporter", "expected"),
    [
        (Eigenvalues(), "auto", ["aten::_linalg_eigh", "try --exporter torchscript"]),
        (Eigenvalues(), "torchscript", ["aten::linalg_eigh", "try --exporter dynamo"]),
        (DataDependentBranch(), "auto", ["if x.sum() > 0:", "data-dependent"]),
    ],
)
def test_export_failure_names_the_construct(model, exporter, expected, tmp_path):
    with pytest.raises(PassError) as error:
        export(tmp_path, model, [TensorSpec("x", ("batch", 3, 3))], exporter=exporter)

    message = str(error.value)
    assert "\n" not in message
    assert "export to .onnx yourself" in message
    for text in expected:
        assert text in message


def test_unknown_exporter_is_refused():
    with pytest.raises(ValueError, match="use one of auto, dynamo, torchscript"):
        ExportToOnnx(exporter="tflite")


def test_stack_traces_are_dropped_unless_asked_for(tiny_transformer, tmp_path):
    lean = export(tmp_path / "lean", tiny_transformer, SEQUENCE)
    full = export(tmp_path / "full", tiny_transformer, SEQUENCE, keep_stack_traces=True)
    traced = [n for n in onnx.load(str(full.path)).graph.node if n.metadata_props]
    assert traced, "the dynamo exporter records stack traces to drop"
    assert not any(n.metadata_props for n in onnx.load(str(lean.path)).graph.node)
    assert lean.path.stat().st_size < full.path.stat().st_size
    assert lean.metrics["parity_ok"] == 1.0
