"""Every runtime by name: adding a runtime is adding its file and one line here."""

from __future__ import annotations

from hardware.errors import UserError
from hardware.runtimes.base import Runtime
from hardware.runtimes.llama_cpp import LlamaCppRuntime
from hardware.runtimes.onnxruntime import OnnxRuntime
from hardware.runtimes.onnxruntime_genai import OrtGenAiRuntime
from hardware.runtimes.openvino import OpenVinoRuntime
from hardware.runtimes.openvino_genai import OpenVinoGenAiRuntime
from hardware.runtimes.pytorch import TorchRuntime
from hardware.runtimes.transformers_lm import TransformersLmRuntime

RUNTIMES: dict[str, Runtime] = {
    OnnxRuntime.name: OnnxRuntime(),
    TorchRuntime.name: TorchRuntime(),
    OpenVinoRuntime.name: OpenVinoRuntime(),
    OpenVinoGenAiRuntime.name: OpenVinoGenAiRuntime(),
    OrtGenAiRuntime.name: OrtGenAiRuntime(),
    TransformersLmRuntime.name: TransformersLmRuntime(),
    LlamaCppRuntime.name: LlamaCppRuntime(),
}


def runtime(name: str) -> Runtime:
    """The runtime called `name`; a UserError naming the known ones otherwise."""
    if name not in RUNTIMES:
        raise UserError(f"unknown runtime '{name}': use one of {', '.join(RUNTIMES)}")
    return RUNTIMES[name]


def runtime_taking(kind: str) -> Runtime:
    """The runtime a variant of `kind` is screened on: the first registered that takes it
    (ONNX Runtime for ONNX files)."""
    found = next((r for r in RUNTIMES.values() if r.takes == kind), None)
    if found is None:
        raise ValueError(f"no runtime takes a {kind} model")
    return found


def other_onnx_runtimes() -> list[Runtime]:
    """The runtimes that take ONNX files besides ONNX Runtime, which runs every variant."""
    return [r for n, r in RUNTIMES.items() if r.takes == "onnx" and n != "onnxruntime"]
