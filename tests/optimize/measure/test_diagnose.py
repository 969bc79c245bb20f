"""The diagnoses of a run: the note that explains a low-precision variant slower than its
float parent, and the warning about figures taken beside a busy neighbour."""

import numpy as np
import onnx
from figures import measured_variant
from onnx import TensorProto, helper, numpy_helper

from optimize.build.variant import Step
from optimize.measure.diagnose import slowdown_note


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
    return measured_variant(pass_name or "parent", p50, path=path, steps=steps)


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
    # Slower within noise (10%, plus both spreads of 2%) is not slower.
    assert slowdown_note(_variant(path, 1.12, "quantize_static"), parent) is None


def _relu_model(path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_profiles_say_how_much_time_the_conversions_take(tmp_path):
    from hardware.op_profile import operator_profile
    from hardware.targets import Target

    parent = _variant(_relu_model(tmp_path / "p.onnx"), 1.0, "")
    slow = _variant(_qdq_model(tmp_path / "q.onnx"), 1.5, "quantize_static")
    feeds = {"x": np.ones((1, 4), np.float32)}

    def profile(variant):
        return operator_profile(variant.path, Target("cpu"), feeds, runs=20)

    note = slowdown_note(slow, parent, profile)
    assert "of kernel time" in note and "in conversions" in note
    assert "largest increases per run over its parent: " in note
    increases = note.split("largest increases per run over its parent: ")[1]
    assert "QuantizeLinear" in increases or "DequantizeLinear" in increases


def test_ops_the_gpu_provider_left_to_the_cpu_are_named(tmp_path):
    path = _qdq_model(tmp_path / "q.onnx")
    parent = _variant(path, 1.0, "")
    slow = _variant(path, 2.0, "fp16")
    gpu_profile = [
        {"op_type": "MatMul", "per_run_ms": 0.5, "share": 0.7, "provider": "CUDAExecutionProvider"},
        {"op_type": "Cast", "per_run_ms": 0.1, "share": 0.2, "provider": "CUDAExecutionProvider"},
        {"op_type": "Range", "per_run_ms": 0.05, "share": 0.1, "provider": "CPUExecutionProvider"},
    ]
    note = slowdown_note(slow, parent, lambda v: gpu_profile if v is slow else gpu_profile[:1])
    assert "fell back to the CPU provider: Range" in note
    assert "20% of kernel time" in note
    assert "Cast +0.1000 ms" in note


def test_figures_taken_beside_a_busy_neighbour_are_named_with_the_share():
    import dataclasses

    from optimize.measure.diagnose import load_warning
    from optimize.report.warning_groups import warning_kind

    quiet = measured_variant("quiet", 1.0)
    busy = measured_variant("busy", 1.0, steps=[Step("fp16", "fp16", {}, True, 0.1)])
    quiet.measurements = dataclasses.replace(quiet.measurements, others_cpu_share=0.02)
    busy.measurements = dataclasses.replace(busy.measurements, others_cpu_share=0.5, retakes=2)
    assert load_warning([quiet]) is None
    warning = load_warning([quiet, busy])
    assert "fp16 (50% of the cores)" in warning and "original" not in warning
    assert warning_kind(warning) == "busy machine"
