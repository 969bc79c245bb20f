"""The thread settings a variant is measured under, on real models."""

import numpy as np
from onnx import helper

from hardware.profile import TimingBudget, profile_onnx
from hardware.session import SessionSettings, open_session, run_session
from hardware.targets import Target
from optimize.measure.workers import with_parallel_execution
from passes.onnx_files import parallel_branches

SWEEP = (SessionSettings(intra_op_threads=2), SessionSettings(intra_op_threads=1))


def _two_towers(save_float_graph, path):
    """Two independent MatMul towers over one input, added at the end."""
    rng = np.random.default_rng(0)
    weights = {f"w{i}": rng.standard_normal((64, 64)).astype(np.float32) for i in range(4)}
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["a1"]),
        helper.make_node("MatMul", ["a1", "w1"], ["a2"]),
        helper.make_node("MatMul", ["x", "w2"], ["b1"]),
        helper.make_node("MatMul", ["b1", "w3"], ["b2"]),
        helper.make_node("Add", ["a2", "b2"], ["y"]),
    ]
    return save_float_graph(path, nodes, weights, 64, 64)


def test_parallel_executor_is_tried_only_where_branches_can_overlap(
    tmp_path, digits_cnn_onnx, save_float_graph
):
    towers = _two_towers(save_float_graph, tmp_path / "towers.onnx")
    assert parallel_branches(towers) == 2
    assert parallel_branches(digits_cnn_onnx) == 1
    assert with_parallel_execution(digits_cnn_onnx, SWEEP, Target("cpu")) == SWEEP
    single_core = (SessionSettings(intra_op_threads=1),)
    assert with_parallel_execution(towers, single_core, Target("cpu")) == single_core
    *same, parallel = with_parallel_execution(towers, SWEEP, Target("cpu"))
    assert tuple(same) == SWEEP
    assert parallel.parallel and parallel.inter_op_threads == 2


def test_parallel_executor_runs_and_agrees(tmp_path, save_float_graph):
    towers = _two_towers(save_float_graph, tmp_path / "towers.onnx")
    x = {"x": np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)}
    budget = TimingBudget(warmup_runs=2, warmup_s=0.0, measure_s=0.05)
    parallel = SessionSettings(intra_op_threads=2, inter_op_threads=2, parallel=True)
    measured = profile_onnx(towers, Target("cpu"), x, x, parallel, budget)
    assert measured.settings["parallel"] is True and measured.latency.runs >= budget.min_runs
    plain = run_session(open_session(towers, Target("cpu")), x)[0]
    both = run_session(open_session(towers, Target("cpu"), parallel), x)[0]
    np.testing.assert_allclose(both, plain, rtol=1e-5)
