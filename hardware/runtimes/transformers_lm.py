"""transformers as a generative runtime: a Hugging Face causal LM folder in PyTorch, eager in
float32 or under bfloat16 autocast, generating with transformers' own generate()."""

from __future__ import annotations

import contextlib
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

INSTALL = "pip install 'optimize[llm]'"
AUTOCAST = ("float32", "bfloat16")


@dataclass(frozen=True)
class TransformersLmSettings:
    """How PyTorch runs the model: intra-op threads and the autocast dtype."""

    threads: int = 1
    autocast: str = "float32"

    def label(self) -> str:
        name = "transformers eager"
        return name if self.autocast == "float32" else f"{name} ({self.autocast} autocast)"


def unsupported_autocast(dtype: str, cpu_flags: list[str]) -> str | None:
    """Why autocast to `dtype` would not be fast on this CPU, or None."""
    if dtype == "float32":
        return None
    # bf16 matmuls run in hardware with AVX-512-BF16 or AMX; elsewhere they are emulated.
    if dtype == "bfloat16" and any(f in cpu_flags for f in ("avx512_bf16", "amx_bf16")):
        return None
    return f"this CPU has no native {dtype} matmuls (AVX-512-BF16 or AMX)"


class _StreamerClock:
    """transformers' streamer protocol over a TokenClock: generate() puts the prompt first,
    then each step's new tokens, one per sequence, as they are sampled."""

    def __init__(self) -> None:
        self.clock = TokenClock()
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.clock.tick()

    def end(self) -> None:
        return None


class TransformersLm(GenerativeModel[TransformersLmSettings]):
    """A causal LM loaded by transformers in float32, run under the settings' autocast."""

    serves_batches = True

    def __init__(self, model: Any, settings: TransformersLmSettings) -> None:
        super().__init__(settings)
        self.model = model

    def _autocast(self):
        import torch

        if self.settings.autocast == "float32":
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=getattr(torch, self.settings.autocast))

    def _generate(self, ids: Any, max_new_tokens: int, streamer: Any = None) -> Any:
        import torch

        eos = self.model.generation_config.eos_token_id
        with torch.inference_mode(), self._autocast():
            return self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                streamer=streamer,
                # No padding happens (prompts of one length); this only silences the warning.
                pad_token_id=eos[0] if isinstance(eos, list) else eos,
            )

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
        import torch

        ids = torch.tensor([list(prompt_ids)], dtype=torch.long)
        streamer = _StreamerClock()
        out = self._generate(ids, max_new_tokens, streamer)
        return streamer.clock.generation(out[0, ids.shape[1] :].tolist())

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[Generation]:
        import torch

        if len({len(p) for p in prompts}) != 1:
            raise ValueError("batched prompts must have one length (no padding is applied)")
        ids = torch.tensor(prompts, dtype=torch.long)
        streamer = _StreamerClock()
        out = self._generate(ids, max_new_tokens, streamer)
        return [streamer.clock.generation(row) for row in out[:, ids.shape[1] :].tolist()]

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        import torch

        with torch.inference_mode(), self._autocast():
            logits = self.model(torch.tensor([list(ids)], dtype=torch.long)).logits
        return log_softmax_of(logits[0, :-1].float().numpy(), list(ids)[1:])

    @property
    def providers(self) -> list[str]:
        """The dtype the weights were loaded in and the autocast dtype matmuls ran in."""
        import torch
        import transformers

        weights = str(next(self.model.parameters()).dtype).removeprefix("torch.")
        return [
            f"transformers {transformers.__version__} on torch {torch.__version__} CPU "
            f"({weights} weights, {self.settings.autocast} compute, "
            f"{torch.get_num_threads()} threads)"
        ]


class TransformersLmRuntime(GenerativeRuntime[TransformersLmSettings]):
    """transformers' own generate() on a Hugging Face folder: the reference every other
    generative runtime is compared with."""

    name = RuntimeName.TRANSFORMERS_LM
    takes = "hf_folder"

    def unavailable(self, target: Target) -> str | None:
        if target.is_gpu:
            return "the transformers language-model runtime is set up for the CPU only"
        return not_installed("transformers", "transformers", INSTALL)

    def settings(
        self, target: Target, cpu_flags: list[str], thread_counts: tuple[int, ...]
    ) -> list[TransformersLmSettings]:
        dtypes = [d for d in AUTOCAST if not unsupported_autocast(d, cpu_flags)]
        counts = thread_counts or (TransformersLmSettings.threads,)
        return [TransformersLmSettings(threads=n, autocast=d) for d in dtypes for n in counts]

    def label(self, settings: TransformersLmSettings) -> str:
        return settings.label()

    def open(
        self, artifact: Any, target: Target, settings: TransformersLmSettings
    ) -> TransformersLm:
        if reason := self.unavailable(target):
            raise TargetUnavailableError(reason)
        import torch
        from transformers import AutoModelForCausalLM

        if settings.autocast not in AUTOCAST:
            raise ValueError(f"autocast {settings.autocast!r}: use one of {', '.join(AUTOCAST)}")
        torch.set_num_threads(settings.threads)
        model = AutoModelForCausalLM.from_pretrained(
            Path(artifact), dtype=torch.float32, local_files_only=True
        ).eval()
        return TransformersLm(model, settings)
