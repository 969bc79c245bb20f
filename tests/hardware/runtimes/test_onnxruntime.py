"""ONNX Runtime behind the runtime contract: what ran, the settings it sweeps, IO binding,
and the parallel executor it adds where branches can overlap."""

import numpy as np
import pytest
from onnx import helper

from hardware.model_files import model_size_mb, parallel_branches
from hardware.profile import TimingBudget, measure_model, time_interleaved
from hardware.runtimes.onnxruntime import OnnxRuntime, bound_runner
from hardware.session import SessionSettings, open_session, run_session
from hardware.targets import Target

CPU = Target("cpu")


def test_providers_are_read_back_from_the_session(tiny_model):
    opened = OnnxRuntime().open(tiny_model.onnx_path, CPU, SessionSettings(intra_op_threads=1))
    assert opened.providers == ["CPUExecutionProvider"]
    assert opened.settings_dict()["intra_op_threads"] == 1


def test_settings_sweep_threads_on_cpu_and_leave_them_to_onnx_runtime_on_gpu():
    ort = OnnxRuntime()
    assert ort.settings(CPU, [], (4, 1)) == [
        SessionSettings(intra_op_threads=4),
        SessionSettings(intra_op_threads=1),
    ]
    assert ort.settings(Target("gpu"), [], (4, 1)) == [SessionSettings()]
    assert ort.settings(CPU, [], ()) == [SessionSettings()]


def test_a_missing_cuda_provider_names_the_package_to_install():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this ONNX Runtime build has the CUDA provider")
    assert "install onnxruntime-gpu" in OnnxRuntime().unavailable(Target("gpu"))


def test_an_io_bound_run_gives_the_outputs_of_a_plain_run(tiny_model):
    # The GPU path binds on 'cuda'; the binding logic is the same on 'cpu', which runs here.
    opened = OnnxRuntime().open(tiny_model.onnx_path, CPU, SessionSettings())
    run, sync = bound_runner(opened.session, tiny_model.batch_feeds, "cpu")
    run()
    sync()
    [bound] = run.binding.copy_outputs_to_cpu()
    np.testing.assert_allclose(bound, opened.run(tiny_model.batch_feeds)[0], rtol=1e-6)


def test_measure_model_keeps_the_sessions_figures(tiny_model, tiny_budget):
    path = tiny_model.onnx_path
    feeds, batch = tiny_model.feeds, tiny_model.batch_feeds
    settings = SessionSettings()
    m = measure_model(
        OnnxRuntime(), path, CPU, feeds, batch, settings, tiny_budget, model_size_mb(path)
    )
    assert m.providers == ["CPUExecutionProvider"]
    assert m.settings == {
        "intra_op_threads": 0,
        "inter_op_threads": 1,
        "parallel": False,
        "graph_level": "all",
        "engine_cache_dir": None,
    }
    assert abs(m.size_mb - tiny_model.onnx_path.stat().st_size / 2**20) < 1e-9


def test_sessions_open_at_once_are_timed_interleaved(tiny_model, tiny_budget):
    opened = [
        OnnxRuntime().open(tiny_model.onnx_path, CPU, SessionSettings(intra_op_threads=n))
        for n in (1, 2)
    ]
    bound = [model.bind(tiny_model.feeds) for model in opened]
    timings = time_interleaved(bound, tiny_budget, rounds=2)
    assert [len(t.round_medians_ms) for t in timings] == [2, 2]
    assert all(t.timing.p50_ms > 0 for t in timings)


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
    assert OnnxRuntime().sweep(digits_cnn_onnx, SWEEP) == SWEEP
    single_core = (SessionSettings(intra_op_threads=1),)
    assert OnnxRuntime().sweep(towers, single_core) == single_core
    *same, parallel = OnnxRuntime().sweep(towers, SWEEP)
    assert tuple(same) == SWEEP
    assert parallel.parallel and parallel.inter_op_threads == 2


def test_parallel_executor_runs_and_agrees(tmp_path, save_float_graph):
    towers = _two_towers(save_float_graph, tmp_path / "towers.onnx")
    x = {"x": np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)}
    budget = TimingBudget(warmup_runs=2, warmup_s=0.0, measure_s=0.05)
    parallel = SessionSettings(intra_op_threads=2, inter_op_threads=2, parallel=True)
    measured = measure_model(OnnxRuntime(), towers, CPU, x, x, parallel, budget)
    assert measured.settings["parallel"] is True and measured.latency.runs >= budget.min_runs
    plain = run_session(open_session(towers, Target("cpu")), x)[0]
    both = run_session(open_session(towers, Target("cpu"), parallel), x)[0]
    np.testing.assert_allclose(both, plain, rtol=1e-5)
