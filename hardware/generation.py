"""The second kind of measurements, for generative models: time to first token, time per
output token, tokens/s alone and with concurrent sequences, memory; taken through the one
timing loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from hardware.load_guard import on_a_quiet_machine
from hardware.memory import peak_rss_mb, rss_mb
from hardware.profile import Measurements, Timing, TimingBudget, summarize, time_runs
from hardware.runtimes.generative import Generation, GenerativeModel, GenerativeRuntime
from hardware.targets import Target

# A generate call takes from milliseconds (a tiny model) to seconds (64 tokens of a 1B
# model on one thread): one warm-up call and at least three timed ones, a few seconds each.
GENERATION_BUDGET = TimingBudget(
    warmup_runs=1, warmup_s=0.0, measure_s=5.0, min_runs=3, max_runs=200, noisy_factor=2.0
)
# Decode is timed over this many greedy tokens, enough for the steady per-token cost.
NEW_TOKENS = 64
# Sequences served at once for the aggregate tokens/s, where the runtime can.
STREAMS = 4
# Time to first token is timed at these prompt lengths (shorter where the prompt is).
PROMPT_LENGTHS = (128, 1024)
# A generate call takes up to seconds: the fewest timed calls of each figure.
FEWEST_CALLS = 3


@dataclass(frozen=True)
class GenerationMeasurements:
    """Everything measured about one generative model under one setting on one target.

    `ttft` is the time to first token by prompt length (tokens); `decode` the time per
    output token after the first, one sample per call of `new_tokens` greedy tokens at
    batch 1, and `tokens_per_s` its median as a rate. `aggregate_tokens_per_s` is the rate
    of all `streams` sequences served together (prefill included); None where the runtime
    serves one sequence at a time."""

    ttft: dict[int, Timing]
    decode: Timing
    new_tokens: int
    tokens_per_s: float
    streams: int
    stream_timing: Timing | None
    aggregate_tokens_per_s: float | None
    peak_memory_mb: float
    load_s: float
    size_mb: float
    providers: list[str]
    settings: dict[str, object]
    threads: int

    def to_dict(self) -> dict[str, object]:
        """Plain data for reports (prompt lengths as keys), with the spread of each figure."""
        data = asdict(self)
        data["ttft"] = {str(n): _with_spread(t) for n, t in self.ttft.items()}
        data["decode"] = _with_spread(self.decode)
        data["stream_timing"] = self.stream_timing and _with_spread(self.stream_timing)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> GenerationMeasurements:
        """Inverse of to_dict."""
        data = dict(data)
        data["ttft"] = {int(n): Timing.from_dict(t) for n, t in data["ttft"].items()}
        data["decode"] = Timing.from_dict(data["decode"])
        if data["stream_timing"] is not None:
            data["stream_timing"] = Timing.from_dict(data["stream_timing"])
        return cls(**data)


def size_on_disk_mb(artifact: Path) -> float:
    """What a model file, or a model folder with everything in it, weighs on disk, MiB."""
    if artifact.is_file():
        return artifact.stat().st_size / 2**20
    return sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file()) / 2**20


def _with_spread(timing: Timing) -> dict[str, object]:
    return asdict(timing) | {"spread": timing.spread}


def _timed_generations(
    run: Callable[[], Generation], budget: TimingBudget
) -> tuple[Timing, list[Generation]]:
    """Time `run` (one generate call) in the one loop, and keep the generations of the
    timed calls only: the loop's warm-up calls come first and are dropped."""
    generations: list[Generation] = []

    def call() -> None:
        generations.append(run())

    timing = time_runs(call, budget)
    return timing, generations[-timing.runs :]


def measure_generation(
    runtime: GenerativeRuntime,
    artifact: object,
    target: Target,
    prompts_by_length: Mapping[int, Sequence[int]],
    settings: object,
    budget: TimingBudget = GENERATION_BUDGET,
    new_tokens: int = NEW_TOKENS,
    streams: int = STREAMS,
    size_mb: float | None = None,
) -> GenerationMeasurements:
    """Open `artifact` with `runtime` under `settings` and measure it: load time; time to
    first token for each prompt of `prompts_by_length` (a one-token generation each call);
    decode time per token over `new_tokens` greedy tokens from the shortest prompt; the
    aggregate rate of `streams` copies of that prompt served together where the runtime
    serves batches; peak memory; the artifact's size on disk unless `size_mb` says it.
    Every figure comes from the one timing loop, the per-call samples from the token
    timestamps the runtime reports.

    Memory figures are only meaningful in a fresh process."""
    if not prompts_by_length:
        raise ValueError("measure_generation needs at least one prompt")
    if new_tokens < 2:
        raise ValueError("decode is timed between tokens: ask for at least 2 new tokens")
    start = time.perf_counter()
    model: GenerativeModel = runtime.open(artifact, target, settings)
    load_s = time.perf_counter() - start

    ttft = {}
    for length in sorted(prompts_by_length):
        prompt = list(prompts_by_length[length])
        timing, calls = _timed_generations(lambda p=prompt: model.generate(p, 1), budget)
        ttft[length] = summarize([g.ttft_ms for g in calls], timing.stopped)

    shortest = list(prompts_by_length[min(prompts_by_length)])
    timing, calls = _timed_generations(lambda: model.generate(shortest, new_tokens), budget)
    decode = summarize([g.decode_ms_per_token for g in calls], timing.stopped)

    stream_timing, aggregate = None, None
    if model.serves_batches and streams > 1:
        batch = [shortest] * streams
        stream_timing = time_runs(lambda: model.generate_batch(batch, new_tokens), budget)
        aggregate = streams * new_tokens / (stream_timing.p50_ms / 1e3)
    peak = peak_rss_mb()
    settings_dict = model.settings_dict()
    return GenerationMeasurements(
        ttft=ttft,
        decode=decode,
        new_tokens=new_tokens,
        tokens_per_s=1e3 / decode.p50_ms,
        streams=streams if stream_timing else 1,
        stream_timing=stream_timing,
        aggregate_tokens_per_s=aggregate,
        peak_memory_mb=peak,
        load_s=load_s,
        size_mb=size_on_disk_mb(Path(str(artifact))) if size_mb is None else size_mb,
        providers=model.providers,
        settings=settings_dict,
        threads=int(settings_dict.get("threads", 0)),
    )


def measure_as_measurements(
    runtime: GenerativeRuntime,
    artifact: object,
    target: Target,
    feeds: dict[str, np.ndarray],
    batch_feeds: dict[str, np.ndarray],
    settings: object,
    budget: TimingBudget,
    size_mb: float,
) -> Measurements:
    """measure_generation from the prompt in the first row of feeds['input_ids'] (time to
    first token at each of PROMPT_LENGTHS it reaches), with as many streams as
    `batch_feeds` has rows, under `budget` with one warm-up call and at least FEWEST_CALLS
    timed ones, taken again while other processes keep the cores busy
    (hardware.load_guard); as Measurements whose latency is the time per output token."""
    prompt = [int(t) for t in np.atleast_2d(feeds["input_ids"])[0]]
    prompts = {min(n, len(prompt)): prompt[: min(n, len(prompt))] for n in PROMPT_LENGTHS}
    streams = int(np.atleast_2d(batch_feeds["input_ids"]).shape[0])
    calls = replace(
        budget, warmup_runs=1, warmup_s=0.0, min_runs=min(budget.min_runs, FEWEST_CALLS)
    )
    before = rss_mb()
    figures, share, retakes = on_a_quiet_machine(
        lambda: measure_generation(
            runtime, artifact, target, prompts, settings, calls, streams=streams, size_mb=size_mb
        )
    )
    return Measurements(
        latency=figures.decode,
        throughput_batch=figures.streams,
        throughput_timing=figures.stream_timing or figures.decode,
        throughput_per_s=figures.aggregate_tokens_per_s or figures.tokens_per_s,
        startup_ms=figures.load_s * 1e3,
        size_mb=figures.size_mb,
        peak_memory_mb=figures.peak_memory_mb,
        session_memory_mb=max(0.0, rss_mb() - before),
        providers=figures.providers,
        settings=figures.settings,
        others_cpu_share=share,
        retakes=retakes,
        generation=figures.to_dict(),
    )
