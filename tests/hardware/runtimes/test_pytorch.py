"""PyTorch behind the runtime contract: the settings it sweeps, what ran, and the
wrappers callers still import with positional arguments."""

import numpy as np
import pytest

from hardware.runtimes.pytorch import TorchRuntime, TorchSettings
from hardware.targets import Target
from hardware.torch_runtime import profile_torch, torch_operator_profile, torch_runner

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
    assert opened.settings_dict() == {"mode": "eager", "autocast": "float32", "threads": 1, "int8": False}


def test_a_cpu_build_says_it_has_no_cuda():
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this PyTorch build has CUDA")
    assert "has no CUDA" in TorchRuntime().unavailable(Target("gpu"))


def test_profile_torch_takes_positional_arguments(tiny_model, tiny_budget):
    args = [tiny_model.feeds["x"]]
    batch_args = [tiny_model.batch_feeds["x"]]
    m = profile_torch(tiny_model.module, CPU, args, batch_args, TorchSettings(), tiny_budget)
    assert m.latency.p50_ms > 0 and m.throughput_batch == 4
    assert m.settings == {"mode": "eager", "autocast": "float32", "threads": 1, "int8": False}
    # Two float32 linear layers: (8*16 + 16) + (16*4 + 4) weights.
    assert abs(m.size_mb - 212 * 4 / 2**20) < 1e-12


def test_torch_runner_gives_the_module_outputs(tiny_model):
    run = torch_runner(tiny_model.module, CPU, TorchSettings())
    [outputs] = run([tiny_model.batch_feeds["x"]])
    np.testing.assert_allclose(outputs, tiny_model.expected, rtol=1e-6)


def test_operator_profile_names_the_linear_layers(tiny_model):
    ops = torch_operator_profile(tiny_model.module, CPU, [tiny_model.feeds["x"]], TorchSettings())
    assert any("addmm" in op["op_type"] or "linear" in op["op_type"] for op in ops)
