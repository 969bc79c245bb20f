"""Every registered runtime keeps the contract: it opens the same model, agrees with the
others, runs in the one timing loop and is measured by measure_model."""

import dataclasses

import numpy as np
import pytest

from hardware.errors import UserError
from hardware.profile import measure_model, time_runs
from hardware.runtimes.registry import RUNTIMES, runtime
from hardware.targets import Target

CPU = Target("cpu")
# The runtimes of tensor models (an ONNX file, a PyTorch module); the generative ones open a
# language model in a format of their own and keep the contract in test_generative_runtimes.
TENSOR_RUNTIMES = sorted(n for n, r in RUNTIMES.items() if r.takes in ("onnx", "torch"))


def _opened(name, tiny_model):
    found = runtime(name)
    settings = found.settings(CPU, [], (1,))[0]
    return found.open(tiny_model.artifact(found.takes), CPU, settings)


def test_every_runtime_is_registered_under_its_name():
    assert set(TENSOR_RUNTIMES) == {"onnxruntime", "torch", "openvino"}
    assert all(runtime(name).name == name for name in RUNTIMES)
    assert runtime("onnxruntime").takes == "onnx" and runtime("torch").takes == "torch"


def test_an_unknown_runtime_is_named_with_the_known_ones():
    with pytest.raises(
        UserError, match="unknown runtime 'tvm': use one of onnxruntime, torch, openvino"
    ):
        runtime("tvm")


@pytest.mark.parametrize("name", TENSOR_RUNTIMES)
def test_each_runtime_agrees_with_pytorch_itself(name, tiny_model):
    [outputs] = _opened(name, tiny_model).run(tiny_model.batch_feeds)
    np.testing.assert_allclose(outputs, tiny_model.expected, atol=1e-4)


def test_the_runtimes_agree_with_each_other(tiny_model):
    onnx, torch = (_opened(name, tiny_model) for name in ("onnxruntime", "torch"))
    for feeds in (tiny_model.feeds, tiny_model.batch_feeds):
        np.testing.assert_allclose(onnx.run(feeds)[0], torch.run(feeds)[0], atol=1e-4)


@pytest.mark.parametrize("name", TENSOR_RUNTIMES)
def test_a_bound_run_goes_through_the_one_timing_loop(name, tiny_model, tiny_budget):
    run, sync = _opened(name, tiny_model).bind(tiny_model.batch_feeds)
    timing = time_runs(run, tiny_budget, sync)
    assert timing.runs >= tiny_budget.min_runs
    assert timing.p50_ms > 0


@pytest.mark.parametrize("name", TENSOR_RUNTIMES)
def test_each_runtime_says_why_it_cannot_use_a_missing_gpu(name):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    reason = runtime(name).unavailable(Target("gpu"))
    assert isinstance(reason, str) and len(reason) > 20
    assert runtime(name).unavailable(CPU) is None


@pytest.mark.parametrize("name", TENSOR_RUNTIMES)
def test_settings_are_frozen_and_sweep_the_thread_counts(name):
    swept = runtime(name).settings(CPU, [], (2, 1))
    assert swept and all(dataclasses.is_dataclass(s) for s in swept)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(swept[0], dataclasses.fields(swept[0])[0].name, 3)
    assert len(swept) == len(set(swept)) >= 2


@pytest.mark.parametrize("name", TENSOR_RUNTIMES)
def test_measure_model_reports_what_ran(name, tiny_model, tiny_budget):
    found = runtime(name)
    settings = found.settings(CPU, [], (1,))[0]
    artifact = tiny_model.artifact(found.takes)
    m = measure_model(
        found, artifact, CPU, tiny_model.feeds, tiny_model.batch_feeds, settings, tiny_budget, 0.5
    )
    assert m.latency.p50_ms > 0 and m.latency.runs >= tiny_budget.min_runs
    assert m.throughput_batch == 4 and m.throughput_per_s > 0
    assert m.startup_ms > 0 and m.size_mb == 0.5
    assert m.settings == dataclasses.asdict(settings)
    assert m.providers and all(isinstance(p, str) for p in m.providers)
