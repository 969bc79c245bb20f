"""OpenVINO GenAI on optimum-intel exports: float32 generates transformers' greedy tokens and
perplexity, OpenVINO's defaults are read back from the CPU plugin, int4 moves perplexity."""

import pytest
from llm_models import KINDS, assert_served_together

from hardware.generation import measure_generation
from hardware.perplexity import greedy_agreement, greedy_continuations, perplexity
from hardware.profile import TimingBudget
from hardware.runtimes.openvino_genai import OpenVinoGenAiRuntime, OpenVinoGenAiSettings
from hardware.runtimes.transformers_lm import TransformersLmRuntime, TransformersLmSettings
from hardware.targets import Target

pytest.importorskip("openvino_genai")
from passes.export_openvino_genai import INSTALL, ExportOpenVinoGenAi, exporter_python  # noqa: E402

if exporter_python() is None:
    pytest.skip(f"optimum-intel is not installed: {INSTALL}", allow_module_level=True)

CPU = Target("cpu")
EXACT = OpenVinoGenAiSettings(threads=1, precision="f32", kv_cache="f32")


def _reference(tiny_lms, kind):
    return TransformersLmRuntime().open(tiny_lms.hf(kind), CPU, TransformersLmSettings())


@pytest.mark.parametrize("kind", KINDS)
def test_float32_matches_transformers_token_for_token(kind, tiny_lms):
    folder = tiny_lms.export(ExportOpenVinoGenAi(), kind).path
    opened = OpenVinoGenAiRuntime().open(folder, CPU, EXACT)
    reference = _reference(tiny_lms, kind)
    prompts, windows = tiny_lms.prompts(kind), tiny_lms.windows(kind)
    agreement = greedy_agreement(
        greedy_continuations(opened, prompts), greedy_continuations(reference, prompts)
    )
    assert agreement.identical_share == 1.0
    mine, theirs = perplexity(opened, windows), perplexity(reference, windows)
    assert mine.tokens == theirs.tokens == 4 * 31
    assert mine.perplexity == pytest.approx(theirs.perplexity, rel=1e-5)


def test_what_ran_is_read_back_from_the_cpu_plugin(tiny_lms):
    folder = tiny_lms.export(ExportOpenVinoGenAi(), "llama").path
    exact = OpenVinoGenAiRuntime().open(folder, CPU, EXACT)
    assert "(f32 compute, f32 KV cache, 1 threads)" in exact.providers[0]
    defaults = OpenVinoGenAiRuntime().open(
        folder, CPU, OpenVinoGenAiSettings(precision="default", kv_cache="default")
    )
    import openvino as ov

    # Whatever the plugin picks on this CPU (bf16 where it has AVX-512-BF16 or AMX).
    core = ov.Core()
    native = core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    cache = core.get_property("CPU", "KV_CACHE_PRECISION").to_string()
    assert f"({native} compute, {cache} KV cache (the plugin's default)" in defaults.providers[0]


def test_int4_moves_perplexity_away_from_float(tiny_lms):
    float_folder = tiny_lms.export(ExportOpenVinoGenAi(), "llama").path
    int4_folder = tiny_lms.export(ExportOpenVinoGenAi(weights="int4", group_size=32), "llama").path
    windows = tiny_lms.windows("llama")
    exact = perplexity(OpenVinoGenAiRuntime().open(float_folder, CPU, EXACT), windows)
    int4 = perplexity(OpenVinoGenAiRuntime().open(int4_folder, CPU, EXACT), windows)
    # Ten times what float runtimes differ by at most (see above).
    assert abs(int4.perplexity / exact.perplexity - 1) > 1e-4


def test_a_batch_continues_each_prompt_as_alone(tiny_lms):
    folder = tiny_lms.export(ExportOpenVinoGenAi(), "llama").path
    opened = OpenVinoGenAiRuntime().open(folder, CPU, EXACT)
    prompts = tiny_lms.prompts("llama")
    alone = [opened.generate(p, 6).tokens for p in prompts]
    assert_served_together(opened.generate_batch(prompts, 6), alone, 6)


def test_settings_sweep_exact_float_and_openvino_defaults():
    swept = OpenVinoGenAiRuntime().settings(CPU, [], (1, 2))
    assert {(s.precision, s.kv_cache) for s in swept} == {("f32", "f32"), ("default", "default")}
    assert {s.threads for s in swept} == {1, 2}
    assert "Intel devices" in OpenVinoGenAiRuntime().unavailable(Target("gpu"))


def test_measurements_come_from_the_pipelines_own_tokens(tiny_lms):
    ids = tiny_lms.token_ids("llama")
    measured = measure_generation(
        OpenVinoGenAiRuntime(),
        tiny_lms.export(ExportOpenVinoGenAi(), "llama").path,
        CPU,
        {8: ids[:8], 64: ids[:64]},
        EXACT,
        TimingBudget(warmup_runs=1, warmup_s=0, measure_s=0.05, min_runs=3),
        new_tokens=8,
        streams=2,
    )
    assert all(t.p50_ms > 0 for t in measured.ttft.values()) and measured.decode.p50_ms > 0
    assert measured.tokens_per_s > 0 and measured.aggregate_tokens_per_s > 0
    assert measured.size_mb > 0 and "f32 compute" in measured.providers[0]
