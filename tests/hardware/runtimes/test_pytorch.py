"""PyTorch behind the runtime contract: the settings it sweeps, what ran, its outputs on
positional arguments, and its operator profile."""

import numpy as np
import pytest

from hardware.profile import measure_model
from hardware.runtimes.pytorch import TorchRuntime, TorchSettings, positional_feeds, weights_mb
from hardware.targets import Target

CPU = Target("cpu")


def test_settings_keep_only_the_precisions_the_target_runs_fast():
    torch = TorchRuntime()
    assert torch.settings(CPU, [], (2, 1)) == [
        TorchSettings("eager", "float32", 2),
        TorchSettings("eager", "float32", 1),
        TorchSettings("compile", "float32", 2),
        TorchSettings("compile", "float32", 1),
    ]
    # bf16 autocast pays where the CPU has bf16 matmuls (AMX here).
    assert TorchSettings("compile", "bfloat16", 1) in torch.settings(CPU, ["amx_bf16"], (1,))
    gpu = {s.autocast for s in torch.settings(Target("gpu"), [], (1,))}
    assert gpu == {"float32", "float16", "bfloat16"}


def test_providers_name_the_torch_build_and_the_setting(tiny_model):
    import torch

    opened = TorchRuntime().open(tiny_model.module, CPU, TorchSettings(threads=1))
    assert opened.providers == [f"torch {torch.__version__} torch eager"]
    assert opened.settings_dict() == {
        "mode": "eager",
        "autocast": "float32",
        "threads": 1,
        "int8": False,
    }


def test_a_cpu_build_says_it_has_no_cuda():
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this PyTorch build has CUDA")
    assert "has no CUDA" in TorchRuntime().unavailable(Target("gpu"))


def test_measure_model_takes_positional_arguments(tiny_model, tiny_budget):
    module, settings = tiny_model.module, TorchSettings()
    feeds = positional_feeds([tiny_model.feeds["x"]])
    batch = positional_feeds([tiny_model.batch_feeds["x"]])
    size = weights_mb(module)
    m = measure_model(TorchRuntime(), module, CPU, feeds, batch, settings, tiny_budget, size)
    assert m.latency.p50_ms > 0 and m.throughput_batch == 4
    assert m.settings == {"mode": "eager", "autocast": "float32", "threads": 1, "int8": False}
    # Two float32 linear layers: (8*16 + 16) + (16*4 + 4) weights.
    assert abs(m.size_mb - 212 * 4 / 2**20) < 1e-12


def test_an_opened_module_gives_its_outputs(tiny_model):
    opened = TorchRuntime().open(tiny_model.module, CPU, TorchSettings())
    [outputs] = opened.run(positional_feeds([tiny_model.batch_feeds["x"]]))
    np.testing.assert_allclose(outputs, tiny_model.expected, rtol=1e-6)


def test_operator_profile_names_the_linear_layers(tiny_model):
    feeds = positional_feeds([tiny_model.feeds["x"]])
    ops = TorchRuntime().operator_profile(tiny_model.module, CPU, feeds, TorchSettings())
    assert any("addmm" in op["op_type"] or "linear" in op["op_type"] for op in ops)
