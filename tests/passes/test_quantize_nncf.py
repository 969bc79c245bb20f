"""NNCF int8: a QDQ model that keeps the digits CNN's accuracy and the tiny transformer's
outputs, and runs as int8 on OpenVINO."""

import numpy as np
import onnxruntime as ort
import pytest

from hardware.runtimes.openvino import OpenVinoRuntime, OpenVinoSettings
from hardware.targets import Target
from passes.base import PassContext, TensorSpec
from passes.onnx_files import op_histogram
from passes.quantize_nncf import QuantizeNncf


def _outputs(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_int8_digits_keep_their_accuracy_and_run_on_openvino(digits, digits_cnn_onnx, tmp_path):
    ctx = PassContext(
        Target("cpu"), [TensorSpec("x", ("batch", 1, 8, 8))], {"x": digits.train_x[:256]}
    )
    outcome = QuantizeNncf().apply(digits_cnn_onnx, tmp_path, ctx)
    assert outcome.path == tmp_path / "model.onnx" and "default scheme" in outcome.note
    assert op_histogram(outcome.path)["QuantizeLinear"] >= 2
    feeds = {"x": digits.test_x}
    fp32 = (_outputs(digits_cnn_onnx, feeds).argmax(1) == digits.test_y).mean()
    int8 = (_outputs(outcome.path, feeds).argmax(1) == digits.test_y).mean()
    assert int8 >= fp32 - 0.01
    opened = OpenVinoRuntime().open(outcome.path, Target("cpu"), OpenVinoSettings(threads=1))
    on_openvino = (opened.run(feeds)[0].argmax(1) == digits.test_y).mean()
    assert on_openvino >= fp32 - 0.01


def test_a_transformer_gets_the_transformer_scheme(tiny_transformer, tmp_path):
    import torch

    path = tmp_path / "encoder.onnx"
    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(
        tiny_transformer,
        (torch.zeros(2, 16, 64),),
        str(path),
        input_names=["x"],
        dynamic_shapes=({0: batch},),
        dynamo=True,
        external_data=False,
    )
    x = np.random.default_rng(0).standard_normal((64, 16, 64)).astype(np.float32)
    ctx = PassContext(Target("cpu"), [TensorSpec("x", ("batch", 16, 64))], {"x": x})
    (tmp_path / "out").mkdir()
    outcome = QuantizeNncf().apply(path, tmp_path / "out", ctx)
    assert "transformer scheme" in outcome.note
    ref, got = _outputs(path, {"x": x[:8]}), _outputs(outcome.path, {"x": x[:8]})
    cosine = (ref * got).sum(-1) / (np.linalg.norm(ref, axis=-1) * np.linalg.norm(got, axis=-1))
    assert cosine.mean() > 0.99


def test_options_are_checked_and_gpus_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="preset 'fast'"):
        QuantizeNncf(preset="fast")
    assert "TensorRT" in QuantizeNncf().unsupported(Target("gpu"))
    assert QuantizeNncf().unsupported(Target("cpu")) is None
