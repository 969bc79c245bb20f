"""ONNX Runtime behind the runtime contract: what ran, the settings it sweeps, IO binding,
and the wrappers callers still import."""

import numpy as np
import pytest

from hardware.profile import bound_runner, interleave_onnx, profile_onnx
from hardware.runtimes.onnxruntime import OnnxRuntime
from hardware.session import SessionSettings
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


def test_profile_onnx_keeps_its_figures(tiny_model, tiny_budget):
    m = profile_onnx(
        tiny_model.onnx_path, CPU, tiny_model.feeds, tiny_model.batch_feeds, budget=tiny_budget
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


def test_interleave_onnx_times_each_model(tiny_model, tiny_budget):
    models = [(tiny_model.onnx_path, SessionSettings(intra_op_threads=n)) for n in (1, 2)]
    timings = interleave_onnx(models, CPU, tiny_model.feeds, tiny_budget, rounds=2)
    assert [len(t.round_medians_ms) for t in timings] == [2, 2]
    assert all(t.timing.p50_ms > 0 for t in timings)
