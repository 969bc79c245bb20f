"""ONNX Runtime GenAI as a generative runtime: og.Model on a folder written by its model
builder (genai_config.json, model.onnx with its KV cache inputs, the tokenizer)."""

from __future__ import annotations

import json
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

INSTALL = "pip install 'optimize[llm]'  (onnxruntime-genai)"
CONFIG_FILE = "genai_config.json"


@dataclass(frozen=True)
class OrtGenAiSettings:
    """How ONNX Runtime runs the decoder: its intra-op threads (0: its default)."""

    threads: int = 1


class OrtGenAiModel(GenerativeModel[OrtGenAiSettings]):
    """An og.Model on the CPU provider; each call drives its own og.Generator token by
    token, so every token's arrival is seen."""

    serves_batches = True

    def __init__(self, folder: Path, model: Any, settings: OrtGenAiSettings) -> None:
        super().__init__(settings)
        self.folder = folder
        self.model = model

    def _generator(self, batch: int, max_length: int, min_length: int) -> Any:
        import onnxruntime_genai as og

        params = og.GeneratorParams(self.model)
        params.set_search_options(
            max_length=max_length, min_length=min_length, do_sample=False, batch_size=batch
        )
        return og.Generator(self.model, params)

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
        return self.generate_batch([list(prompt_ids)], max_new_tokens)[0]

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[Generation]:
        if len({len(p) for p in prompts}) != 1:
            raise ValueError("batched prompts must have one length (no padding is applied)")
        start_ns = time.perf_counter_ns()
        total = len(prompts[0]) + max_new_tokens
        generator = self._generator(len(prompts), total, total)
        generator.append_tokens(np.asarray(prompts, dtype=np.int32))
        steps, token_ns = [], []
        # Each step gives every sequence its next token at once.
        while not generator.is_done():
            generator.generate_next_token()
            token_ns.append(time.perf_counter_ns())
            steps.append(list(map(int, generator.get_next_tokens())))
        return [Generation([s[i] for s in steps], start_ns, token_ns) for i in range(len(prompts))]

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        ids = list(ids)
        generator = self._generator(1, len(ids), 0)
        generator.append_tokens(np.asarray(ids, dtype=np.int32))
        # The decoder's raw output after the prompt's forward pass: every position's logits.
        logits = np.asarray(generator.get_output("logits"))[0]
        if logits.shape[0] != len(ids):
            raise ValueError(
                f"{self.folder} gives logits for {logits.shape[0]} of {len(ids)} positions "
                "(built with prune_lm_head): it cannot be scored teacher-forced"
            )
        return log_softmax_of(logits[:-1], ids[1:])

    @property
    def providers(self) -> list[str]:
        """The device og.Model runs on, and the weights' precision read from the model."""
        import onnxruntime_genai as og

        weights = weight_precision(self.folder)
        threads = self.settings.threads or "default"
        return [
            f"ONNX Runtime GenAI {og.__version__} {self.model.device_type} "
            f"({threads} threads; weights {weights.describe()})"
        ]


class OrtGenAiRuntime(GenerativeRuntime[OrtGenAiSettings]):
    """ONNX Runtime GenAI on the CPU, swept over thread counts."""

    name = RuntimeName.ONNXRUNTIME_GENAI
    takes = "ortgenai_folder"

    def unavailable(self, target: Target) -> str | None:
        if target.is_gpu:
            return "the ONNX Runtime GenAI runtime is set up for its CPU package only"
        return not_installed("onnxruntime_genai", "ONNX Runtime GenAI", INSTALL)

    def settings(
        self, target: Target, cpu_flags: list[str], thread_counts: tuple[int, ...]
    ) -> list[OrtGenAiSettings]:
        return [OrtGenAiSettings(threads=n) for n in thread_counts or (OrtGenAiSettings.threads,)]

    def open(self, artifact: Any, target: Target, settings: OrtGenAiSettings) -> OrtGenAiModel:
        if reason := self.unavailable(target):
            raise TargetUnavailableError(reason)
        import onnxruntime_genai as og

        folder = Path(artifact)
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{folder} has no {CONFIG_FILE}: build it first")
        config = og.Config(str(folder))
        config.clear_providers()  # the CPU provider
        if settings.threads:
            options = {"intra_op_num_threads": settings.threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        return OrtGenAiModel(folder, og.Model(config), settings)
