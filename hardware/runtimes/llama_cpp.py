"""llama.cpp as a generative runtime: llama-cpp-python on a .gguf file, an optional extra
since it compiles llama.cpp from source on install."""

from __future__ import annotations

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
    log_softmax_of,
)
from hardware.targets import Target, TargetUnavailableError
from hardware.weight_precision import weight_precision

# Source-only on PyPI: pip compiles llama.cpp, 5 to 10 minutes on two cores.
INSTALL = "pip install 'optimize[llamacpp]'  (llama-cpp-python, compiled on install)"
# Context the runtime allocates: the longest prompt plus output the measurements use.
CONTEXT = 2048


def llama_cpp_missing() -> str | None:
    """Why llama-cpp-python cannot be imported here, with the install command; None when
    it can."""
    return not_installed("llama_cpp", "llama-cpp-python", INSTALL)


# KV-cache element types by name, as llama.cpp's ggml numbers them.
KV_CACHE_TYPES = {"f32": "GGML_TYPE_F32", "f16": "GGML_TYPE_F16"}


@dataclass(frozen=True)
class LlamaCppSettings:
    """How llama.cpp runs the model: its threads for decode and for prompt batches, and the
    KV cache's element type (f16 is llama.cpp's default; f32 reproduces float runtimes)."""

    threads: int = 1
    kv_cache: str = "f16"


class LlamaCppModel(GenerativeModel[LlamaCppSettings]):
    """A GGUF opened by llama-cpp-python with every position's logits kept, so that one
    evaluation of a window scores it teacher-forced."""

    def __init__(self, path: Path, llama: Any, settings: LlamaCppSettings) -> None:
        super().__init__(settings)
        self.path = path
        self.llama = llama
        self.end_of_sequence = int(llama.token_eos())

    def _suppress_end(self, input_ids: Any, scores: Any) -> Any:
        scores[self.end_of_sequence] = -np.inf
        return scores

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
        start_ns = time.perf_counter_ns()
        tokens, token_ns = [], []
        # llama-cpp-python keeps the previous call's KV cache and skips the prompt's longest
        # prefix it already holds: emptied first, every call runs its whole prefill.
        self.llama.reset()
        # temp=0 is llama.cpp's greedy sampler.
        stream = self.llama.generate(
            list(prompt_ids),
            temp=0.0,
            top_k=1,
            repeat_penalty=1.0,
            logits_processor=[self._suppress_end],
        )
        for token in stream:
            token_ns.append(time.perf_counter_ns())
            tokens.append(int(token))
            if len(tokens) == max_new_tokens:
                break
        return Generation(tokens, start_ns, token_ns)

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        ids = list(ids)
        self.llama.reset()
        self.llama.eval(ids)
        logits = np.asarray(self.llama.scores[: len(ids) - 1])
        return log_softmax_of(logits, ids[1:])

    @property
    def providers(self) -> list[str]:
        """llama.cpp's version and threads, and the GGUF's tensor types read back."""
        import llama_cpp

        weights = weight_precision(self.path)
        cache = {getattr(llama_cpp, v): k for k, v in KV_CACHE_TYPES.items()}.get(
            self.llama.context_params.type_k, "other"
        )
        return [
            f"llama.cpp (llama-cpp-python {llama_cpp.__version__}) CPU "
            f"({self.settings.threads} threads, {cache} KV cache; weights {weights.describe()})"
        ]


class LlamaCppRuntime(GenerativeRuntime[LlamaCppSettings]):
    """llama.cpp on the CPU, swept over thread counts."""

    name = RuntimeName.LLAMA_CPP
    takes = "gguf"

    def unavailable(self, target: Target) -> str | None:
        if target.is_gpu:
            return "the llama.cpp runtime is set up for llama-cpp-python's CPU build only"
        return llama_cpp_missing()

    def settings(
        self, target: Target, cpu_flags: list[str], thread_counts: tuple[int, ...]
    ) -> list[LlamaCppSettings]:
        return [LlamaCppSettings(threads=n) for n in thread_counts or (LlamaCppSettings.threads,)]

    def open(self, artifact: Any, target: Target, settings: LlamaCppSettings) -> LlamaCppModel:
        if reason := self.unavailable(target):
            raise TargetUnavailableError(reason)
        import llama_cpp

        if settings.kv_cache not in KV_CACHE_TYPES:
            raise ValueError(
                f"kv_cache {settings.kv_cache!r}: use one of {', '.join(KV_CACHE_TYPES)}"
            )
        cache_type = getattr(llama_cpp, KV_CACHE_TYPES[settings.kv_cache])
        path = Path(artifact)
        llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=CONTEXT,
            n_threads=settings.threads,
            n_threads_batch=settings.threads,
            logits_all=True,
            type_k=cache_type,
            type_v=cache_type,
            verbose=False,
        )
        return LlamaCppModel(path, llama, settings)
