"""Target values: where a model runs, and the ONNX Runtime providers that run it there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hardware.errors import UserError

TargetKind = Literal["cpu", "gpu"]


class TargetUnavailableError(UserError):
    """The requested target cannot run on this machine; the message says how to get it."""


@dataclass(frozen=True)
class Target:
    """A place to run a model: the CPU, or a GPU by device index."""

    kind: TargetKind
    device_id: int = 0

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"gpu:{self.device_id}"

    @property
    def is_gpu(self) -> bool:
        return self.kind == "gpu"

    def providers(self, available: list[str]) -> list[str]:
        """ONNX Runtime providers to ask for, best first, among those `available`.

        The CPU provider always comes last on a GPU target: ONNX Runtime places the
        operators the GPU provider lacks there.
        """
        if self.kind == "cpu":
            return ["CPUExecutionProvider"]
        # TensorRT first where installed: ONNX Runtime gives it the subgraphs it can build
        # engines for and leaves the rest to CUDA.
        wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
        return [p for p in wanted if p in available]

    def provider_options(
        self, provider: str, engine_cache_dir: str | None = None
    ) -> dict[str, str]:
        """Options for one provider on this target; TensorRT keeps its built engines in
        `engine_cache_dir` so a later session skips the minutes-long build."""
        if provider == "CUDAExecutionProvider":
            return {"device_id": str(self.device_id)}
        if provider == "TensorrtExecutionProvider":
            options = {"device_id": str(self.device_id), "trt_fp16_enable": "True"}
            if engine_cache_dir:
                options |= {
                    "trt_engine_cache_enable": "True",
                    "trt_engine_cache_path": engine_cache_dir,
                }
            return options
        return {}


def parse_target(text: str) -> Target:
    """Parse 'cpu', 'gpu' or 'gpu:N' into a Target."""
    value = text.strip().lower()
    if value == "cpu":
        return Target("cpu")
    if value in ("gpu", "cuda"):
        return Target("gpu", 0)
    for prefix in ("gpu:", "cuda:"):
        if value.startswith(prefix) and value[len(prefix) :].isdigit():
            return Target("gpu", int(value[len(prefix) :]))
    raise UserError(f"unknown target '{text}': use cpu, gpu or gpu:N (N is the device index)")
