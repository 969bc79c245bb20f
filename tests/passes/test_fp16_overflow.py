"""fp16 safety: nodes whose values overflow float16 are found and kept in float32."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto

from hardware.targets import Target
from passes.base import PassContext, TensorSpec
from passes.fp16 import Float16
from passes.fp16_overflow import overflowing_nodes


class Squares(torch.nn.Module):
    """Squares values near 300: about 90,000, beyond float16's 65,504."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        big = x * 300.0
        return big * big / 1e5


@pytest.fixture(scope="module")
def squares_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("fp16") / "squares.onnx"
    torch.onnx.export(
        Squares(),
        (torch.ones(2, 4),),
        str(path),
        input_names=["x"],
        dynamic_axes={"x": {0: "batch"}},
        dynamo=False,
    )
    return path


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[
        0
    ]


def test_overflowing_nodes_are_found(squares_onnx):
    x = np.full((4, 4), 1.0, np.float32)
    hot = overflowing_nodes(squares_onnx, {"x": x})
    assert "/Mul_1" in hot  # the square; the 1e5 constant is beyond float16 too
    assert all(n.startswith(("/Mul", "/Div", "/Constant")) for n in hot)
    # Small inputs stay in range; only the 1e5 constant itself is beyond float16.
    assert overflowing_nodes(squares_onnx, {"x": x / 100}) == ["/Constant_1", "/Div"]


def _output_type(model_path, node_name):
    model = onnx.shape_inference.infer_shapes(onnx.load(model_path))
    [node] = [n for n in model.graph.node if n.name == node_name]
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    return types[node.output[0]]


@pytest.mark.parametrize("keep, dtype", [(False, TensorProto.FLOAT16), (True, TensorProto.FLOAT)])
def test_fp16_keeps_overflowing_nodes_in_fp32(keep, dtype, squares_onnx, tmp_path):
    # ONNX Runtime's CPU provider runs most float16 ops through float32 casts, so the
    # overflow would only show on a GPU; the graph's types are what must be right.
    x = np.full((4, 4), 1.0, np.float32)
    ctx = PassContext(Target("cpu"), [TensorSpec("x", ("batch", 4))], {"x": x})
    outcome = Float16(keep_overflowing_in_fp32=keep).apply(squares_onnx, tmp_path, ctx)
    assert _output_type(outcome.path, "/Mul_1") == dtype
    close = np.allclose(_run(outcome.path, x), _run(squares_onnx, x), rtol=1e-2)
    assert close is keep
    if keep:
        assert "kept in float32 for overflowing float16: " in outcome.note
        assert outcome.metrics["fp32_nodes_for_overflow"] >= 1


def test_a_model_with_a_fixed_batch_is_probed_one_batch_at_a_time(tmp_path):
    path = tmp_path / "fixed.onnx"
    torch.onnx.export(Squares(), (torch.ones(1, 4),), str(path), input_names=["x"], dynamo=False)
    x = np.full((16, 4), 1.0, np.float32)
    # Only the last sample overflows: every batch of one is run, not just the first.
    x[:15] /= 100
    hot = overflowing_nodes(path, {"x": x})
    assert "/Mul_1" in hot
    assert overflowing_nodes(path, {"x": x[:15]}) == ["/Constant_1", "/Div"]
