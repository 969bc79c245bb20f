"""The per-operator profile of a real model run by ONNX Runtime."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hardware.op_profile import operator_profile
from hardware.targets import Target


def test_profile_ranks_the_operators_that_ran(tmp_path):
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((256, 256)).astype(np.float32), f"w{i}")
        for i in range(2)
    ]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w0"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w1"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 256])],
        weights,
    )
    path = tmp_path / "mlp.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    feeds = {"x": rng.standard_normal((8, 256)).astype(np.float32)}
    rows = operator_profile(path, Target("cpu"), feeds, runs=20)
    by_op = {r["op_type"]: r for r in rows}
    # Which op leads is timing, noisy on a shared machine; the order must follow the totals.
    totals = [r["total_ms"] for r in rows]
    assert totals == sorted(totals, reverse=True)
    assert by_op["MatMul"]["calls_per_run"] == 2
    assert by_op["Relu"]["calls_per_run"] == 1
    assert 0.5 < sum(r["share"] for r in rows) <= 1.0001
    assert by_op["MatMul"]["per_run_ms"] > 0
    assert not list(tmp_path.glob("*.json")), "the trace file is not left behind"
    # Out of time at once, it still takes the fewest runs, and counts calls per run taken.
    quick = {r["op_type"]: r for r in operator_profile(path, Target("cpu"), feeds, seconds=0.0)}
    assert quick["MatMul"]["calls_per_run"] == 2 and quick["Relu"]["calls_per_run"] == 1
