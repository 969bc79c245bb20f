"""The weights' realized precision is read back from each format: a Hugging Face folder, an
OpenVINO IR, an ONNX Runtime GenAI folder and a GGUF file."""

import pytest
from llm_models import write_small_gguf

from hardware.weight_precision import WeightPrecision, weight_precision


def test_a_hugging_face_folder_is_float(tiny_lms):
    precision = weight_precision(tiny_lms.hf("qwen2"))
    assert precision.share("float") == 1.0 and "F32" in precision.detail


def test_openvino_int8_and_int4_are_read_from_the_ir(tiny_lms):
    exporter = pytest.importorskip("passes.export_openvino_genai")
    if exporter.exporter_python() is None:
        pytest.skip(f"optimum-intel is not installed: {exporter.INSTALL}")
    int8 = weight_precision(
        tiny_lms.export(exporter.ExportOpenVinoGenAi(weights="int8"), "llama").path
    )
    assert int8.share("int8") > 0.99
    int4 = weight_precision(
        tiny_lms.export(exporter.ExportOpenVinoGenAi(weights="int4", group_size=32), "llama").path
    )
    # NNCF keeps the embedding and the head in int8 by default; every other layer is int4.
    assert int4.share("int4") > 0.5 and int4.share("int8") > 0.2 and int4.share("float") < 0.01


def test_onnx_runtime_genai_int4_counts_matmulnbits(tiny_lms):
    exporter = pytest.importorskip("passes.export_ortgenai")
    folder = tiny_lms.export(exporter.ExportOrtGenAi(weights="int4", block_size=32), "llama").path
    precision = weight_precision(folder)
    # Every MatMul (layers and head) is int4; the embedding table stays float.
    assert precision.detail["MatMulNBits 4-bit"] == precision.elements["int4"]
    assert precision.share("int4") > 0.6 and precision.share("int8") == 0


def test_gguf_tensor_types_are_read_back(tmp_path):
    pytest.importorskip("gguf")
    precision = weight_precision(write_small_gguf(tmp_path / "m.gguf"))
    assert precision.elements == {"int8": 64 * 64, "float": 64}
    assert precision.detail == {"Q8_0": 64 * 64, "F32": 64}


def test_shares_describe_themselves():
    precision = WeightPrecision({"int4": 75, "float": 25}, {})
    assert precision.describe() == "75% int4, 25% float"
    assert precision.metrics() == {"int4_share": 0.75, "float_share": 0.25}
    with pytest.raises(ValueError, match="not a .gguf"):
        weight_precision(__import__("pathlib").Path(__file__))
