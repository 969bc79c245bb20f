"""The note that explains a low-precision variant slower than its float parent."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimize.diagnose import slowdown_note
from optimize.pipeline import Step, Variant


def _qdq_model(path):
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "scale")
    zero = numpy_helper.from_array(np.array(0, np.int8), "zero")
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["d"]),
            helper.make_node("Relu", ["d"], ["y"]),
        ],
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [scale, zero],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _variant(path, p50, pass_name):
    steps = [Step(pass_name, pass_name, {}, True, 0.1)] if pass_name else []
    variant = Variant(pass_name or "parent", None, steps, path, "measured")
    variant.measurements = {"latency": {"p50_ms": p50}}
    return variant


def test_slower_quantized_variant_names_its_conversions(tmp_path):
    path = _qdq_model(tmp_path / "q.onnx")
    parent = _variant(path, 1.0, "")
    slow = _variant(path, 1.5, "quantize_static")
    note = slowdown_note(slow, parent)
    assert note.startswith("1.50× slower than original")
    assert "1 DequantizeLinear, 1 QuantizeLinear around 1 compute nodes" in note


def test_faster_or_float_variants_get_no_note(tmp_path):
    path = _qdq_model(tmp_path / "q.onnx")
    parent = _variant(path, 1.0, "")
    assert slowdown_note(_variant(path, 0.5, "quantize_static"), parent) is None
    assert slowdown_note(_variant(path, 2.0, "ort_graph"), parent) is None
