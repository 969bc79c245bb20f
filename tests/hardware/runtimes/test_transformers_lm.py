"""transformers as a generative runtime: its greedy tokens are transformers' own, its
log-probabilities give transformers' loss, and bf16 is offered only where the CPU has it."""

import numpy as np
import pytest
from llm_models import assert_served_together

from hardware.runtimes.transformers_lm import TransformersLmRuntime, TransformersLmSettings
from hardware.targets import Target

pytest.importorskip("transformers")
CPU = Target("cpu")


@pytest.fixture(scope="module")
def llama(tiny_lms):
    return TransformersLmRuntime().open(tiny_lms.hf("llama"), CPU, TransformersLmSettings())


def test_greedy_tokens_are_transformers_own_with_a_time_for_each(llama, tiny_lms):
    import torch

    prompt = tiny_lms.prompts("llama")[0]
    generation = llama.generate(prompt, 12)
    with torch.no_grad():
        direct = llama.model.generate(
            torch.tensor([prompt]), max_new_tokens=12, min_new_tokens=12, do_sample=False
        )
    assert generation.tokens == direct[0, len(prompt) :].tolist()
    assert len(generation.token_ns) == 12
    assert generation.start_ns < generation.token_ns[0]
    assert np.all(np.diff(generation.token_ns) > 0)
    assert generation.ttft_ms > 0 and generation.decode_ms_per_token > 0


def test_log_probabilities_give_transformers_loss(llama, tiny_lms):
    import torch

    [window, *_] = tiny_lms.windows("llama")
    logprobs = llama.token_logprobs(window)
    with torch.no_grad():
        ids = torch.tensor([window])
        loss = llama.model(ids, labels=ids).loss.item()
    assert logprobs.shape == (len(window) - 1,)
    assert -logprobs.mean() == pytest.approx(loss, rel=1e-5)


def test_a_batch_continues_each_prompt_as_alone(llama, tiny_lms):
    prompts = tiny_lms.prompts("llama")
    alone = [llama.generate(p, 6).tokens for p in prompts]
    assert_served_together(llama.generate_batch(prompts, 6), alone, 6)


def test_bf16_autocast_is_swept_only_where_the_cpu_has_bf16():
    runtime = TransformersLmRuntime()
    plain = runtime.settings(CPU, ["avx2"], (1, 2))
    assert {s.autocast for s in plain} == {"float32"} and len(plain) == 2
    with_bf16 = runtime.settings(CPU, ["avx512_bf16"], (1,))
    assert {s.autocast for s in with_bf16} == {"float32", "bfloat16"}
    assert "CPU only" in runtime.unavailable(Target("gpu"))


def test_providers_say_what_ran(tiny_lms):
    opened = TransformersLmRuntime().open(
        tiny_lms.hf("llama"), CPU, TransformersLmSettings(autocast="bfloat16")
    )
    [provider] = opened.providers
    assert "float32 weights, bfloat16 compute, 1 threads" in provider
