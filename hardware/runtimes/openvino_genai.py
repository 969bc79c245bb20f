"""OpenVINO GenAI as a generative runtime: LLMPipeline on a folder exported by optimum-intel
(openvino_model.xml with a stateful KV cache, and the converted tokenizer)."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hardware.runtimes.base import RuntimeName, not_installed
from hardware.runtimes.generative import (
    Generation,
    GenerativeModel,
    GenerativeRuntime,
    TokenClock,
    log_softmax_of,
)
from hardware.targets import Target, TargetUnavailableError

INSTALL = "pip install 'optimize[llm]'  (openvino-genai and openvino-tokenizers)"
MODEL_XML = "openvino_model.xml"
# A setting left to OpenVINO.
DEFAULT = "default"


@dataclass(frozen=True)
class OpenVinoGenAiSettings:
    """How the CPU plugin compiles the model: inference threads (0: its default), the
    inference precision and the KV-cache precision; DEFAULT leaves either to OpenVINO
    (on a CPU with AVX-512-BF16 or AMX it picks bf16 compute and a compressed cache)."""

    threads: int = 0
    precision: str = "f32"
    kv_cache: str = "f32"

    def properties(self) -> dict[str, object]:
        """The compile properties these settings ask for."""
        props: dict[str, object] = {}
        if self.threads:
            props["INFERENCE_NUM_THREADS"] = self.threads
        if self.precision != DEFAULT:
            props["INFERENCE_PRECISION_HINT"] = self.precision
        if self.kv_cache != DEFAULT:
            props["KV_CACHE_PRECISION"] = self.kv_cache
        return props

    def label(self) -> str:
        if self.precision == DEFAULT and self.kv_cache == DEFAULT:
            return "OpenVINO GenAI (its defaults)"
        return f"OpenVINO GenAI ({self.precision}, {self.kv_cache} KV cache)"


@functools.cache
def _streamer_class() -> type:
    """A StreamerBase that timestamps each token id the pipeline hands over (defined on
    first use, so that importing this module does not import OpenVINO GenAI)."""
    import openvino_genai

    class StreamerClock(openvino_genai.StreamerBase):
        def __init__(self) -> None:
            super().__init__()
            self.clock = TokenClock()

        def write(self, token: Any) -> Any:
            self.clock.tick(len(token) if isinstance(token, list) else 1)
            return openvino_genai.StreamingStatus.RUNNING

        def end(self) -> None:
            return None

    return StreamerClock


class OpenVinoGenAiModel(GenerativeModel[OpenVinoGenAiSettings]):
    """An LLMPipeline on the CPU; the same IR compiled by the CPU plugin under the same
    properties scores text (LLMPipeline exposes no logits) and says what precision ran."""

    serves_batches = True

    def __init__(self, folder: Path, pipeline: Any, settings: OpenVinoGenAiSettings) -> None:
        super().__init__(settings)
        self.folder = folder
        self.pipeline = pipeline
        self._scorer: Any = None

    def _config(self, max_new_tokens: int) -> Any:
        import openvino_genai

        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = max_new_tokens
        config.min_new_tokens = max_new_tokens
        config.do_sample = False
        return config

    def _inputs(self, prompts: list[list[int]]) -> Any:
        import openvino as ov
        import openvino_genai

        ids = np.asarray(prompts, dtype=np.int64)
        return openvino_genai.TokenizedInputs(ov.Tensor(ids), ov.Tensor(np.ones_like(ids)))

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
        inputs = self._inputs([list(prompt_ids)])
        streamer = _streamer_class()()
        result = self.pipeline.generate(inputs, self._config(max_new_tokens), streamer)
        return streamer.clock.generation(result.tokens[0])

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[Generation]:
        start_ns = time.perf_counter_ns()
        result = self.pipeline.generate(self._inputs(prompts), self._config(max_new_tokens))
        # The pipeline stamps each step on the monotonic clock perf_counter_ns reads, in ms
        # (a streamer takes one sequence only).
        token_ns = [int(ms * 1e6) for ms in result.perf_metrics.raw_metrics.m_new_token_times]
        return [Generation(list(map(int, t)), start_ns, token_ns) for t in result.tokens]

    @property
    def scorer(self) -> Any:
        """The IR compiled by the CPU plugin with the pipeline's properties, once."""
        if self._scorer is None:
            import openvino as ov

            self._scorer = ov.Core().compile_model(
                self.folder / MODEL_XML, "CPU", self.settings.properties()
            )
        return self._scorer

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        ids = list(ids)
        length = len(ids)
        request = self.scorer.create_infer_request()
        # The model keeps its KV cache as state: a fresh request starts from an empty one.
        request.reset_state()
        feeds = {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "attention_mask": np.ones((1, length), dtype=np.int64),
            "position_ids": np.arange(length, dtype=np.int64)[None],
            "beam_idx": np.zeros(1, dtype=np.int32),
        }
        names = {port.get_any_name() for port in self.scorer.inputs}
        result = request.infer({k: v for k, v in feeds.items() if k in names})
        logits = np.asarray(result[self.scorer.outputs[0]])[0]
        if logits.shape[0] != length:
            raise ValueError(
                f"{self.folder} gives logits for {logits.shape[0]} of {length} positions "
                "(exported for last-token logits only): it cannot be scored teacher-forced"
            )
        return log_softmax_of(logits[:-1], ids[1:])

    @property
    def providers(self) -> list[str]:
        """The compute precision the CPU plugin chose for this IR under these settings, read
        back from a compiled model rather than taken from the export's name; the KV cache's
        precision as asked, or else the plugin's default, which the pipeline's paged cache
        takes (LLMPipeline does not expose its compiled model)."""
        import openvino as ov
        import openvino_genai

        compute = self.scorer.get_property("INFERENCE_PRECISION_HINT").to_string()
        threads = self.scorer.get_property("INFERENCE_NUM_THREADS")
        if self.settings.kv_cache == DEFAULT:
            default = ov.Core().get_property("CPU", "KV_CACHE_PRECISION").to_string()
            cache = f"{default} KV cache (the plugin's default)"
        else:
            cache = f"{self.settings.kv_cache} KV cache"
        return [
            f"OpenVINO GenAI {openvino_genai.__version__.split('-')[0]} CPU "
            f"({compute} compute, {cache}, {threads} threads)"
        ]


class OpenVinoGenAiRuntime(GenerativeRuntime[OpenVinoGenAiSettings]):
    """OpenVINO GenAI's LLMPipeline on the CPU: exact float32, and OpenVINO's own choices."""

    name = RuntimeName.OPENVINO_GENAI
    takes = "openvino_genai_folder"

    def unavailable(self, target: Target) -> str | None:
        if target.is_gpu:
            return "OpenVINO GenAI runs on Intel devices; on an NVIDIA GPU it has no device"
        return not_installed("openvino_genai", "OpenVINO GenAI", INSTALL)

    def settings(
        self, target: Target, cpu_flags: list[str], thread_counts: tuple[int, ...]
    ) -> list[OpenVinoGenAiSettings]:
        # Exact float32 (what the export holds) and OpenVINO's defaults, which on a CPU
        # with native bf16 run bf16 compute with a compressed KV cache.
        choices = [("f32", "f32"), (DEFAULT, DEFAULT)]
        return [
            OpenVinoGenAiSettings(threads=n, precision=p, kv_cache=kv)
            for p, kv in choices
            for n in thread_counts or (0,)
        ]

    def label(self, settings: OpenVinoGenAiSettings) -> str:
        return settings.label()

    def open(
        self, artifact: Any, target: Target, settings: OpenVinoGenAiSettings
    ) -> OpenVinoGenAiModel:
        if reason := self.unavailable(target):
            raise TargetUnavailableError(reason)
        import openvino_genai

        folder = Path(artifact)
        if not (folder / MODEL_XML).is_file():
            raise FileNotFoundError(f"{folder} has no {MODEL_XML}: export it first")
        # The pipeline's default paged KV cache keeps the prefixes of earlier prompts: a
        # timed prompt would then skip its prefill from the second call on. Off, every call
        # computes what a new prompt costs.
        scheduler = openvino_genai.SchedulerConfig()
        scheduler.enable_prefix_caching = False
        pipeline = openvino_genai.LLMPipeline(
            str(folder), "CPU", scheduler_config=scheduler, **settings.properties()
        )
        return OpenVinoGenAiModel(folder, pipeline, settings)
