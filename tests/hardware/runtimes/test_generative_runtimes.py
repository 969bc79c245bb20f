"""Every generative runtime keeps the contract: registered under its name, its own format
(never counted among the ONNX runtimes), a reason for a GPU it cannot use, frozen settings
over the thread counts, and one bound greedy generation for the one timing loop."""

import dataclasses

import pytest

from hardware.profile import TimingBudget, time_runs
from hardware.runtimes.generative import (
    AGREEMENT_PROMPT,
    AGREEMENT_TOKENS,
    BOUND_NEW_TOKENS,
    GenerativeRuntime,
)
from hardware.runtimes.registry import RUNTIMES, other_onnx_runtimes, runtime
from hardware.runtimes.transformers_lm import TransformersLmSettings
from hardware.targets import Target

CPU = Target("cpu")
GENERATIVE = {
    "openvino_genai": "openvino_genai_folder",
    "onnxruntime_genai": "ortgenai_folder",
    "transformers_lm": "hf_folder",
    "llama_cpp": "gguf",
}


def test_each_is_registered_under_its_name_with_its_own_format():
    found = {n: r.takes for n, r in RUNTIMES.items() if isinstance(r, GenerativeRuntime)}
    assert found == GENERATIVE
    assert all(runtime(name).name == name for name in GENERATIVE)
    assert {r.name for r in other_onnx_runtimes()} == {"openvino"}


@pytest.mark.parametrize("name", sorted(GENERATIVE))
def test_each_says_why_it_cannot_use_a_gpu(name):
    reason = runtime(name).unavailable(Target("gpu"))
    assert isinstance(reason, str) and len(reason) > 20


@pytest.mark.parametrize("name", sorted(GENERATIVE))
def test_a_missing_package_is_named_with_its_install_command(name):
    reason = runtime(name).unavailable(CPU)
    assert reason is None or ("not installed" in reason and "pip install" in reason)


@pytest.mark.parametrize("name", sorted(GENERATIVE))
def test_settings_are_frozen_and_sweep_the_thread_counts(name):
    swept = runtime(name).settings(CPU, [], (2, 1))
    assert swept and all(dataclasses.is_dataclass(s) for s in swept)
    with pytest.raises(dataclasses.FrozenInstanceError):
        swept[0].threads = 3
    assert {s.threads for s in swept} == {1, 2} and len(swept) == len(set(swept))


def test_a_bound_generation_goes_through_the_one_timing_loop(tiny_lms):
    import numpy as np

    opened = runtime("transformers_lm").open(tiny_lms.hf("gpt2"), CPU, TransformersLmSettings())
    prompt = np.asarray([tiny_lms.prompts("gpt2")[0]])
    run, sync = opened.bind({"input_ids": prompt})
    assert len(run().tokens) == BOUND_NEW_TOKENS and sync is None
    timing = time_runs(run, TimingBudget(warmup_runs=1, warmup_s=0, measure_s=0.01, min_runs=3))
    assert timing.runs >= 3 and timing.p50_ms > 0
    logprobs, continuation = opened.run({"input_ids": prompt})
    assert logprobs.shape == (1, prompt.shape[1] - 1) and np.all(logprobs < 0)
    # The greedy continuation of the prompt's start, for agreement with another runtime.
    expected = opened.generate(list(prompt[0, :AGREEMENT_PROMPT]), AGREEMENT_TOKENS).tokens
    assert continuation.tolist() == [expected]
