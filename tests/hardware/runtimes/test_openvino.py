"""OpenVINO on the CPU: the precisions it is asked for, the one it used read back, and a
clear reason where it cannot run."""

import builtins

import numpy as np
import pytest

from hardware.runtimes.openvino import OpenVinoRuntime, OpenVinoSettings, native_precisions
from hardware.targets import Target

CPU = Target("cpu")


def test_the_sweep_takes_only_precisions_the_cpu_runs_natively():
    assert native_precisions(["avx2"]) == ["f32"]
    assert native_precisions(["avx512_bf16"]) == ["f32", "bf16"]
    assert native_precisions(["amx_bf16", "amx_fp16"]) == ["f32", "bf16", "f16"]
    swept = OpenVinoRuntime().settings(CPU, ["avx512_bf16"], (2, 1))
    # The lower precision, usually the faster where the CPU runs it natively, first.
    assert [(s.precision, s.threads) for s in swept] == [
        ("bf16", 2),
        ("bf16", 1),
        ("f32", 2),
        ("f32", 1),
    ]


def test_f32_matches_pytorch_and_says_what_ran(tiny_model):
    opened = OpenVinoRuntime().open(tiny_model.onnx_path, CPU, OpenVinoSettings(threads=1))
    [outputs] = opened.run(tiny_model.batch_feeds)
    np.testing.assert_allclose(outputs, tiny_model.expected, atol=1e-5)
    assert opened.providers == ["OpenVINO CPU (f32)"]


def test_bf16_is_read_back_from_the_compiled_model(tiny_model):
    settings = OpenVinoSettings(threads=1, precision="bf16")
    opened = OpenVinoRuntime().open(tiny_model.onnx_path, CPU, settings)
    # A CPU without bf16 units runs f32 instead; the read-back says which.
    assert opened.precision_used in ("bf16", "f32")
    [outputs] = opened.run(tiny_model.batch_feeds)
    np.testing.assert_allclose(outputs, tiny_model.expected, atol=0.05)


def test_defaults_leave_every_choice_to_openvino(tiny_model):
    opened = OpenVinoRuntime().open(tiny_model.onnx_path, CPU, OpenVinoSettings.defaults())
    [outputs] = opened.run(tiny_model.batch_feeds)
    np.testing.assert_allclose(outputs, tiny_model.expected, atol=0.05)
    # Its own precision (bf16 on AMX, f32 elsewhere), read back, and its own hint.
    assert opened.precision_used in ("bf16", "f32")
    assert str(opened.compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"


def test_throughput_is_measured_under_the_throughput_hint(tiny_model, tmp_path):
    import torch

    from hardware.profile import TimingBudget, measure_model

    budget = TimingBudget(warmup_runs=1, warmup_s=0.0, measure_s=0.05, min_runs=5, max_runs=5)
    settings = OpenVinoSettings(threads=2)
    measured = measure_model(
        OpenVinoRuntime(),
        tiny_model.onnx_path,
        CPU,
        tiny_model.feeds,
        tiny_model.batch_feeds,
        settings,
        budget,
    )
    assert measured.providers[0] == "OpenVINO CPU (f32)"
    assert measured.providers[1].startswith("throughput hint: ")
    assert measured.throughput_per_s > 0 and measured.settings["hint"] == "LATENCY"
    # A fixed batch cannot be split across streams: it is served whole, as for latency.
    fixed = tmp_path / "fixed.onnx"
    torch.onnx.export(
        tiny_model.module, (torch.zeros(4, 8),), str(fixed), input_names=["x"], dynamo=False
    )
    opened = OpenVinoRuntime().open(fixed, CPU, settings)
    run, _ = opened.bind_throughput({"x": tiny_model.batch_feeds["x"]})
    run()
    assert opened.providers == ["OpenVINO CPU (f32)"]


def test_without_the_package_the_reason_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    assert OpenVinoRuntime().unavailable(CPU) == "OpenVINO is not installed: pip install openvino"
    assert "NVIDIA" in OpenVinoRuntime().unavailable(Target("gpu"))
    with pytest.raises(Exception, match="pip install openvino"):
        OpenVinoRuntime().open("model.onnx", CPU, OpenVinoSettings())
