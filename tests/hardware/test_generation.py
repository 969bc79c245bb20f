"""Generation measurements through the one timing loop: time to first token per prompt
length, time per output token, tokens/s alone and with concurrent sequences, read back
from plain data."""

import dataclasses

import pytest

from hardware import generation
from hardware.generation import GenerationMeasurements, measure_generation
from hardware.profile import TimingBudget
from hardware.runtimes.transformers_lm import TransformersLmRuntime, TransformersLmSettings
from hardware.targets import Target

pytest.importorskip("transformers")
CPU = Target("cpu")
BUDGET = TimingBudget(warmup_runs=1, warmup_s=0, measure_s=0.05, min_runs=3)


@pytest.fixture(scope="module")
def measured(tiny_lms):
    ids = tiny_lms.token_ids("llama")
    prompts = {8: ids[:8], 32: ids[:32]}
    settings = TransformersLmSettings(threads=1)
    return measure_generation(
        TransformersLmRuntime(), tiny_lms.hf("llama"), CPU, prompts, settings, BUDGET, 8, 2, 1.5
    )


def test_every_figure_is_measured(measured):
    assert set(measured.ttft) == {8, 32}
    assert all(t.p50_ms > 0 and t.runs >= 3 for t in measured.ttft.values())
    assert measured.decode.p50_ms > 0 and measured.decode.runs >= 3
    assert measured.tokens_per_s == pytest.approx(1e3 / measured.decode.p50_ms)
    assert measured.streams == 2 and measured.aggregate_tokens_per_s > 0
    assert measured.peak_memory_mb > 0 and measured.load_s > 0 and measured.size_mb == 1.5
    assert measured.threads == 1 and measured.settings == {"threads": 1, "autocast": "float32"}
    assert "float32 compute" in measured.providers[0]


def test_the_artifact_is_weighed_on_disk_unless_given(tiny_lms):
    folder = tiny_lms.hf("llama")
    files = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    ids = tiny_lms.token_ids("llama")
    measured = measure_generation(
        TransformersLmRuntime(), folder, CPU, {8: ids[:8]}, TransformersLmSettings(), BUDGET, 4, 1
    )
    assert measured.size_mb == pytest.approx(files) and files > 0.1


def test_measurements_survive_plain_data(measured):
    data = measured.to_dict()
    assert data["ttft"]["8"]["spread"] == measured.ttft[8].spread
    assert GenerationMeasurements.from_dict(data) == measured


def test_generate_calls_go_through_the_one_timing_loop(monkeypatch, tiny_lms):
    calls = []
    real = generation.time_runs

    def counting(run, budget, synchronize=None):
        calls.append(budget)
        return real(run, budget, synchronize)

    monkeypatch.setattr(generation, "time_runs", counting)
    ids = tiny_lms.token_ids("llama")
    single = dataclasses.replace(BUDGET, min_runs=2)
    measured = measure_generation(
        TransformersLmRuntime(),
        tiny_lms.hf("llama"),
        CPU,
        {8: ids[:8]},
        TransformersLmSettings(),
        single,
        4,
        1,
    )
    # One loop for the prompt's first token, one for decode; no batch with one stream.
    assert calls == [single, single]
    assert measured.stream_timing is None and measured.aggregate_tokens_per_s is None


def test_decode_needs_two_tokens_at_least(tiny_lms):
    with pytest.raises(ValueError, match="at least 2 new tokens"):
        measure_generation(
            TransformersLmRuntime(),
            tiny_lms.hf("llama"),
            CPU,
            {4: [1, 2, 3, 4]},
            TransformersLmSettings(),
            BUDGET,
            1,
        )
