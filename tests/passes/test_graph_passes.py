"""ONNX Runtime graph optimization and the onnxscript optimizer on a real exported CNN."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from hardware.model_files import external_data_files
from hardware.targets import Target
from passes.base import PassContext, TensorSpec
from passes.onnx_files import op_histogram
from passes.onnxscript_optimize import OnnxscriptOptimize
from passes.ort_graph import OrtGraphOptimize

INPUTS = [TensorSpec("x", ("batch", 1, 8, 8))]


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory):
    from optimize.examples import digits_cnn_module

    torch.manual_seed(0)
    model = digits_cnn_module().eval()
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    torch.onnx.export(
        model,
        (torch.randn(2, 1, 8, 8),),
        str(path),
        input_names=["x"],
        dynamo=False,
        dynamic_axes={"x": {0: "batch"}},
        do_constant_folding=False,
    )
    return path


def _outputs(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize(
    "pass_",
    [
        OrtGraphOptimize("basic"),
        OrtGraphOptimize("extended"),
        OrtGraphOptimize("all"),
        OnnxscriptOptimize(),
    ],
    ids=lambda p: p.label(),
)
def test_pass_gives_valid_equivalent_model(pass_, cnn_onnx, tmp_path):
    before = cnn_onnx.read_bytes()
    outcome = pass_.apply(cnn_onnx, tmp_path, PassContext(Target("cpu"), INPUTS))
    assert cnn_onnx.read_bytes() == before, "the input model must not change"
    assert outcome.path == tmp_path / "model.onnx"
    if pass_.name != "ort_graph" or pass_.level != "all":
        # The 'all' level writes contrib ops for this CPU's kernels, unknown to the checker.
        onnx.checker.check_model(str(outcome.path), full_check=True)
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_outputs(outcome.path, x), _outputs(cnn_onnx, x), atol=1e-4)
    assert "nodes" in outcome.note


def test_basic_level_folds_batchnorm_into_conv(cnn_onnx, tmp_path):
    outcome = OrtGraphOptimize("basic").apply(
        cnn_onnx, tmp_path, PassContext(Target("cpu"), INPUTS)
    )
    assert outcome.changed
    assert "BatchNormalization" in op_histogram(cnn_onnx)
    assert "BatchNormalization" not in op_histogram(outcome.path)


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="use one of basic, extended, all"):
        OrtGraphOptimize("turbo")


@pytest.mark.parametrize(
    "pass_", [OrtGraphOptimize("extended"), OnnxscriptOptimize()], ids=lambda p: p.name
)
def test_external_data_models_stay_external(pass_, cnn_onnx, tmp_path):
    external = tmp_path / "src" / "model.onnx"
    external.parent.mkdir()
    onnx.save_model(
        onnx.load(cnn_onnx),
        external,
        save_as_external_data=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    outcome = pass_.apply(external, out_dir, PassContext(Target("cpu"), INPUTS))
    assert external_data_files(outcome.path), "weights should stay in an external file"
    x = np.random.default_rng(1).standard_normal((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_outputs(outcome.path, x), _outputs(cnn_onnx, x), atol=1e-4)
