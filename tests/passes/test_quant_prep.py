"""ONNX Runtime's pre-processing before quantization writes only the file it returns, even
where its symbolic shape inference gives up (which saves the model it gave up on)."""

import os

import onnx
from token_encoder import save_token_encoder

from hardware.targets import Target
from passes.base import PassContext, TensorSpec
from passes.quant_prep import preprocess_for_quantization, quantized_nodes
from passes.quantize_dynamic import QuantizeDynamic

INPUTS = [TensorSpec("input_ids", ("batch", "sequence"), "int64")]


def test_preprocessing_leaves_the_working_directory_as_it_was(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    model = save_token_encoder(tmp_path / "model" / "encoder.onnx")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    prepared = preprocess_for_quantization(model, tmp_path / "scratch")

    assert list(cwd.iterdir()) == [] and os.getcwd() == str(cwd)
    assert sorted(p.name for p in prepared.parent.iterdir()) == [
        "preprocessed.onnx",
        "preprocessed.onnx.data",
    ]
    onnx.checker.check_model(str(prepared))


def test_the_fallbacks_candidates_leave_the_working_directory_as_it_was(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    model = save_token_encoder(tmp_path / "model" / "encoder.onnx")
    out_dir = tmp_path / "quantized"
    out_dir.mkdir()
    quantized = QuantizeDynamic().apply(model, out_dir, PassContext(Target("cpu"), INPUTS)).path
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    assert quantized_nodes(model, quantized)
    assert list(cwd.iterdir()) == [] and os.getcwd() == str(cwd)
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.onnx", "model.onnx.data"]
