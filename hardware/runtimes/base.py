"""The runtime contract: what a runtime says about itself, and the model it opens."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from hardware.targets import Target


class RuntimeName(StrEnum):
    """Every runtime's name: its label in reports, its key in the registry and in recipes."""

    ONNXRUNTIME = "onnxruntime"
    TORCH = "torch"
    OPENVINO = "openvino"
    OPENVINO_GENAI = "openvino_genai"
    ONNXRUNTIME_GENAI = "onnxruntime_genai"
    TRANSFORMERS_LM = "transformers_lm"
    LLAMA_CPP = "llama_cpp"


def not_installed(module: str, package: str, install: str) -> str | None:
    """Why a runtime whose Python module is `module` cannot run here when importing it
    fails (`package` is what the user knows it as, `install` how to get it), or None."""
    try:
        __import__(module)
    except ImportError:
        return f"{package} is not installed: {install}"
    return None


# A runtime's settings: a frozen dataclass whose fields are what it sweeps.
S = TypeVar("S")

# What the timing loop calls: one run, and the wait for the device (None where there is none).
Bound = tuple[Callable[[], object], Callable[[], None] | None]


class OpenedModel(ABC, Generic[S]):
    """An artifact a runtime opened on a target under one setting, ready to run."""

    def __init__(self, settings: S) -> None:
        self.settings = settings

    @abstractmethod
    def bind(self, feeds: dict[str, np.ndarray]) -> Bound:
        """A run on `feeds` with all it needs done beforehand (inputs copied to the device,
        outputs bound, a compiled model's kernels built for these shapes), and the
        synchronizer that waits for the device; what `time_runs` times."""

    def bind_throughput(self, feeds: dict[str, np.ndarray]) -> Bound:
        """`bind` for the throughput batch: a runtime with a throughput configuration of
        its own (parallel streams) serves the batch under it; by default, `bind`."""
        return self.bind(feeds)

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs on `feeds`, as numpy arrays on the host: for fidelity checks."""

    @property
    @abstractmethod
    def providers(self) -> list[str]:
        """What actually runs the model, read back from the live session, not what was asked."""

    def settings_dict(self) -> dict[str, object]:
        """The settings as plain data, for the report and to rebuild them (`Settings(**d)`)."""
        return dataclasses.asdict(self.settings)


class Runtime(ABC, Generic[S]):
    """A runtime: its name (also its label in reports), the artifact it takes, whether it
    can run on a target, the settings it sweeps there, and how it opens an artifact."""

    name: ClassVar[RuntimeName]
    # "onnx" (an ONNX file path), "torch" (a loaded PyTorch module or exported program), or
    # the runtime's own format name.
    takes: ClassVar[str]

    @abstractmethod
    def unavailable(self, target: Target) -> str | None:
        """Why this runtime cannot run on `target` on this machine, or None when it can."""

    @abstractmethod
    def settings(
        self, target: Target, cpu_flags: list[str], thread_counts: tuple[int, ...]
    ) -> list[S]:
        """The settings worth measuring on `target`, each thread count among them."""

    def label(self, settings: S) -> str:
        """How a row under `settings` is named in reports, its thread count aside."""
        return self.name

    @abstractmethod
    def open(self, artifact: Any, target: Target, settings: S) -> OpenedModel[S]:
        """Open `artifact` on `target` under `settings`; raises TargetUnavailableError
        when `unavailable(target)` says why not."""

    def sweep(self, artifact: Any, settings: tuple[S, ...]) -> tuple[S, ...]:
        """The settings to time `artifact` under: `settings`, plus any this runtime adds
        for what the artifact holds."""
        return settings

    def judging_batch(self, settings: S, eval_batch: int, latency_batch: int) -> int:
        """The batch a model run under `settings` has its outputs judged at: the
        evaluation batch, unless each new shape costs this runtime much."""
        return eval_batch

    def operator_profile(
        self, artifact: Any, target: Target, feeds: dict[str, np.ndarray], settings: S
    ) -> list[dict[str, object]] | None:
        """The operators `artifact` spends its time in under `settings` (op type, share,
        milliseconds and calls per run), the costliest first; None where this runtime has
        no profiler."""
        return None
