"""ONNX Runtime GenAI on model-builder folders: float32 generates transformers' greedy tokens
and perplexity, int4 moves perplexity, and the weights' precision is in what ran."""

import pytest
from llm_models import assert_served_together

from hardware.generation import measure_generation
from hardware.perplexity import greedy_agreement, greedy_continuations, perplexity
from hardware.profile import TimingBudget
from hardware.runtimes.onnxruntime_genai import OrtGenAiRuntime, OrtGenAiSettings
from hardware.runtimes.transformers_lm import TransformersLmRuntime, TransformersLmSettings
from hardware.targets import Target

pytest.importorskip("onnxruntime_genai")
pytest.importorskip("onnx_ir")
from passes.export_ortgenai import ExportOrtGenAi  # noqa: E402

CPU = Target("cpu")
INT4 = ExportOrtGenAi(weights="int4", block_size=32)


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_float32_matches_transformers_token_for_token(kind, tiny_lms):
    opened = OrtGenAiRuntime().open(
        tiny_lms.export(ExportOrtGenAi(), kind).path, CPU, OrtGenAiSettings()
    )
    reference = TransformersLmRuntime().open(tiny_lms.hf(kind), CPU, TransformersLmSettings())
    prompts, windows = tiny_lms.prompts(kind), tiny_lms.windows(kind)
    agreement = greedy_agreement(
        greedy_continuations(opened, prompts), greedy_continuations(reference, prompts)
    )
    assert agreement.identical_share == 1.0
    assert perplexity(opened, windows).perplexity == pytest.approx(
        perplexity(reference, windows).perplexity, rel=1e-5
    )


def test_int4_moves_perplexity_and_says_so(tiny_lms):
    windows = tiny_lms.windows("llama")
    exact = OrtGenAiRuntime().open(
        tiny_lms.export(ExportOrtGenAi(), "llama").path, CPU, OrtGenAiSettings()
    )
    int4 = OrtGenAiRuntime().open(tiny_lms.export(INT4, "llama").path, CPU, OrtGenAiSettings())
    assert (
        abs(perplexity(int4, windows).perplexity / perplexity(exact, windows).perplexity - 1) > 1e-4
    )
    assert "int4" in int4.providers[0] and "100% float" in exact.providers[0]


def test_each_token_is_timed_and_a_batch_continues_each_prompt_as_alone(tiny_lms):
    opened = OrtGenAiRuntime().open(
        tiny_lms.export(ExportOrtGenAi(), "llama").path, CPU, OrtGenAiSettings(threads=2)
    )
    prompts = tiny_lms.prompts("llama")
    alone = [opened.generate(p, 6) for p in prompts]
    assert all(len(g.tokens) == len(g.token_ns) == 6 for g in alone)
    assert all(g.ttft_ms > 0 and g.decode_ms_per_token > 0 for g in alone)
    assert_served_together(opened.generate_batch(prompts, 6), [g.tokens for g in alone], 6)


def test_a_folder_without_its_config_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="genai_config.json"):
        OrtGenAiRuntime().open(tmp_path, CPU, OrtGenAiSettings())


def test_measurements_come_from_the_generators_own_tokens(tiny_lms):
    ids = tiny_lms.token_ids("llama")
    measured = measure_generation(
        OrtGenAiRuntime(),
        tiny_lms.export(ExportOrtGenAi(), "llama").path,
        CPU,
        {8: ids[:8], 64: ids[:64]},
        OrtGenAiSettings(threads=1),
        TimingBudget(warmup_runs=1, warmup_s=0, measure_s=0.05, min_runs=3),
        new_tokens=8,
        streams=2,
    )
    assert all(t.p50_ms > 0 for t in measured.ttft.values()) and measured.decode.p50_ms > 0
    assert measured.tokens_per_s > 0 and measured.aggregate_tokens_per_s > 0
    assert measured.threads == 1 and "100% float" in measured.providers[0]
