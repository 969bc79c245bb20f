"""PyTorch as a runtime: eager or torch.compile, with autocast, on a target, timed by the
same loop as ONNX Runtime."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hardware.profile import Measurements, TimingBudget, peak_rss_mb, rss_mb, time_runs
from hardware.targets import Target

MODES = ("eager", "compile")
AUTOCAST = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class TorchSettings:
    """How PyTorch runs the model: compiled or not, the autocast dtype, intra-op threads."""

    mode: str = "eager"
    autocast: str = "float32"
    threads: int = 1

    def label(self) -> str:
        name = "torch.compile" if self.mode == "compile" else "torch eager"
        return name if self.autocast == "float32" else f"{name} ({self.autocast} autocast)"


def unsupported_autocast(dtype: str, target: Target, cpu_flags: list[str]) -> str | None:
    """Why autocast to `dtype` would not be fast on `target`, or None."""
    if dtype == "float32":
        return None
    if target.is_gpu:
        return None
    if dtype == "bfloat16" and any(f in cpu_flags for f in ("avx512_bf16", "amx_bf16")):
        return None
    if dtype == "bfloat16":
        return "this CPU has neither AVX-512-BF16 nor AMX: bf16 matmuls would be emulated"
    return "PyTorch has no fast float16 CPU kernels; float16 autocast is for GPUs"


def _device(target: Target) -> str:
    return f"cuda:{target.device_id}" if target.is_gpu else "cpu"


def _callable(model: Any, settings: TorchSettings, target: Target):
    """The model as a function of tensors on the target's device."""
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        # An unlifted program module refuses eval(); it has no train-time behaviour anyway.
        model = model.module().to(_device(target))
    else:
        model = model.to(_device(target)).eval()
    if settings.mode == "compile":
        model = torch.compile(model)
    dtype = getattr(torch, settings.autocast)

    def call(*args):
        with (
            torch.inference_mode(),
            torch.autocast(
                "cuda" if target.is_gpu else "cpu",
                dtype=dtype,
                enabled=settings.autocast != "float32",
            ),
        ):
            return model(*args)

    return call


def _flatten(output: Any) -> list[np.ndarray]:
    import torch

    if isinstance(output, torch.Tensor):
        return [output.detach().float().cpu().numpy()]
    if isinstance(output, dict):
        output = list(output.values())
    return [array for item in output if item is not None for array in _flatten(item)]


def torch_runner(
    model: Any, target: Target, settings: TorchSettings
) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """A function running the model under `settings` on one batch of positional arrays."""
    import torch

    torch.set_num_threads(settings.threads)
    call = _callable(model, settings, target)

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return _flatten(call(*[torch.from_numpy(a).to(_device(target)) for a in arrays]))

    return run


def profile_torch(
    model: Any,
    target: Target,
    args: list[np.ndarray],
    batch_args: list[np.ndarray],
    settings: TorchSettings,
    budget: TimingBudget = TimingBudget(),
) -> Measurements:
    """Measure PyTorch running the model: start-up (moving it to the device, compiling on
    the first call), batch-1 latency and throughput, with device synchronisation on GPU."""
    import torch

    torch.set_num_threads(settings.threads)
    sync = torch.cuda.synchronize if target.is_gpu else None
    rss_before = rss_mb()
    start = time.perf_counter_ns()
    call = _callable(model, settings, target)
    single = [torch.from_numpy(a).to(_device(target)) for a in args]
    batch = [torch.from_numpy(a).to(_device(target)) for a in batch_args]
    call(*single)
    call(*batch)  # a compiled model builds its kernels for each new shape
    if sync:
        sync()
    startup_ms = (time.perf_counter_ns() - start) / 1e6
    latency = time_runs(lambda: call(*single), budget, sync)
    throughput = time_runs(lambda: call(*batch), budget, sync)
    size = batch_args[0].shape[0]
    return Measurements(
        latency=latency,
        throughput_batch=size,
        throughput_timing=throughput,
        throughput_per_s=size / (throughput.p50_ms / 1e3),
        startup_ms=startup_ms,
        size_mb=_weights_mb(model),
        peak_memory_mb=peak_rss_mb(),
        session_memory_mb=max(0.0, rss_mb() - rss_before),
        providers=[f"torch {torch.__version__} {settings.label()}"],
        settings=asdict(settings),
    )


def _weights_mb(model: Any) -> float:
    """Parameters and buffers in memory, MiB: what the model weighs where it is served."""
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        tensors = list(model.state_dict.values()) + list(model.constants.values())
    else:
        tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor)) / 2**20


def torch_operator_profile(
    model: Any,
    target: Target,
    args: list[np.ndarray],
    settings: TorchSettings,
    runs: int = 20,
    top: int = 10,
) -> list[dict[str, object]]:
    """The `top` PyTorch operators by self time over `runs` runs after warm-up (a compiled
    model's kernels show as the aten ops they call), with share and calls per run."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from hardware.op_profile import ranked_operators

    torch.set_num_threads(settings.threads)
    call = _callable(model, settings, target)
    tensors = [torch.from_numpy(a).to(_device(target)) for a in args]
    for _ in range(3):
        call(*tensors)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if target.is_gpu else [])
    with profile(activities=activities) as trace:
        for _ in range(runs):
            call(*tensors)
        if target.is_gpu:
            torch.cuda.synchronize()
    totals, calls = {}, {}
    for event in trace.key_averages():
        # Device time where the op ran on the GPU, else its own CPU time.
        us = getattr(event, "self_device_time_total", 0) or event.self_cpu_time_total
        if us > 0 and not event.key.startswith("ProfilerStep"):
            totals[event.key] = us / 1e3
            calls[event.key] = event.count
    return ranked_operators(totals, calls, runs, top)
