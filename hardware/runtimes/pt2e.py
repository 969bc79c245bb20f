"""PyTorch int8 for the inductor CPU backend: PT2E post-training quantization with
torchao's X86InductorQuantizer (int8 weights and activations, statically calibrated),
which torch.compile lowers to oneDNN's VNNI and AMX int8 kernels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from hardware.quiet import quietly
from hardware.targets import Target

INSTALL = "pip install torchao"
# The CPU features oneDNN's int8 kernels need to beat float: elsewhere int8 is emulated.
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# Calibration batches: enough to settle the activation ranges of a small model.
CALIBRATION_BATCHES = 16


def unsupported_int8(target: Target, cpu_flags: list[str]) -> str | None:
    """Why a PT2E int8 row would not be fast on `target`, or None."""
    if target.is_gpu:
        return "PT2E int8 for inductor is a CPU path; on an NVIDIA GPU int8 runs through TensorRT"
    if not any(flag in cpu_flags for flag in INT8_FLAGS):
        return "this CPU has neither VNNI nor AMX: inductor's int8 kernels would not beat float"
    import importlib.util

    if importlib.util.find_spec("torchao") is None:
        return f"torchao is not installed: {INSTALL}"
    return None


def _torchao_quietly():
    """torchao's quantization entry points, imported without the warnings it prints about
    GPU kernels a CPU machine lacks."""
    with quietly():
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
    return prepare_pt2e, convert_pt2e, x86


def quantize_for_inductor(
    model: Any,
    example: list[np.ndarray],
    dynamic_batch: list[bool],
    calibration: Iterable[list[np.ndarray]],
) -> Any:
    """`model` (a module or an exported program) captured on `example` with a dynamic
    first dim on the arguments `dynamic_batch` marks, prepared with X86InductorQuantizer's default config,
    calibrated on `calibration` (batches of positional arrays) and converted: a graph
    module for torch.compile to lower to int8 kernels."""
    import torch

    prepare_pt2e, convert_pt2e, x86 = _torchao_quietly()
    args = tuple(torch.from_numpy(a) for a in example)
    if isinstance(model, torch.export.ExportedProgram):
        module = model.module()
    else:
        batch = torch.export.Dim("batch", min=1)
        dynamic = tuple({0: batch} if flag else None for flag in dynamic_batch)
        module = torch.export.export(
            model.eval(), args, dynamic_shapes=dynamic, strict=True
        ).module()
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    with torch.no_grad():
        try:
            prepared = prepare_pt2e(module, quantizer)
        except Exception as exc:  # torchao's pattern matching raises untyped errors
            raise RuntimeError(
                f"torchao's X86InductorQuantizer could not annotate this graph "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        for arrays in calibration:
            prepared(*(torch.from_numpy(a) for a in arrays))
        return convert_pt2e(prepared)
