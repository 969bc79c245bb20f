"""llama.cpp on GGUF files from llama.cpp's own converter: an f32 GGUF generates
transformers' greedy tokens and perplexity, q8_0 moves perplexity; skipped, with the install
command, where llama-cpp-python or the converter is missing."""

import pytest

from hardware.perplexity import greedy_agreement, greedy_continuations, perplexity
from hardware.runtimes.llama_cpp import LlamaCppRuntime, LlamaCppSettings, llama_cpp_missing
from hardware.runtimes.transformers_lm import TransformersLmRuntime, TransformersLmSettings
from hardware.targets import Target
from passes.export_gguf import ExportGguf

CPU = Target("cpu")
# llama.cpp keeps its KV cache in f16 by default: enough to flip a near-tie in greedy output.
FLOAT_CACHE = LlamaCppSettings(kv_cache="f32")
KIND = "llama-sentencepiece"

if reason := llama_cpp_missing() or ExportGguf().unsupported(CPU):
    pytest.skip(reason, allow_module_level=True)


def test_f32_matches_transformers_and_q8_0_moves_perplexity(tiny_lms):
    reference = TransformersLmRuntime().open(tiny_lms.hf("llama"), CPU, TransformersLmSettings())
    f32 = LlamaCppRuntime().open(
        tiny_lms.export(ExportGguf(weights="f32"), KIND).path, CPU, FLOAT_CACHE
    )
    prompts, windows = tiny_lms.prompts("llama"), tiny_lms.windows("llama")
    agreement = greedy_agreement(
        greedy_continuations(f32, prompts), greedy_continuations(reference, prompts)
    )
    assert agreement.identical_share == 1.0
    exact = perplexity(reference, windows).perplexity
    assert perplexity(f32, windows).perplexity == pytest.approx(exact, rel=1e-4)
    q8 = LlamaCppRuntime().open(
        tiny_lms.export(ExportGguf(weights="q8_0"), KIND).path, CPU, LlamaCppSettings()
    )
    assert abs(perplexity(q8, windows).perplexity / exact - 1) > 1e-4
    assert "f16 KV cache" in q8.providers[0] and "int8" in q8.providers[0]


def test_each_call_runs_its_whole_prefill_and_times_each_token(tiny_lms):
    opened = LlamaCppRuntime().open(
        tiny_lms.export(ExportGguf(weights="f32"), KIND).path, CPU, LlamaCppSettings()
    )
    prompt = tiny_lms.token_ids("llama")[:128]
    first, again = opened.generate(prompt, 8), opened.generate(prompt, 8)
    assert len(again.tokens) == len(again.token_ns) == 8 and again.tokens == first.tokens
    # A prompt already in the cache would come back in a fraction of the prefill's time.
    assert again.ttft_ms > 0.5 * first.ttft_ms and again.decode_ms_per_token > 0
