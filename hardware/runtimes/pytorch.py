"""PyTorch as a runtime: a loaded module or exported program, eager or torch.compile, with
autocast, on a target."""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from hardware.runtimes.base import Bound, OpenedModel, Runtime, RuntimeName
from hardware.runtimes.pt2e import unsupported_int8
from hardware.targets import Target, TargetUnavailableError

MODES = ("eager", "compile")
AUTOCAST = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class TorchSettings:
    """How PyTorch runs the model: compiled or not, the autocast dtype, intra-op threads,
    and whether it was quantized to int8 (PT2E, for inductor) before compiling."""

    mode: str = "eager"
    autocast: str = "float32"
    threads: int = 1
    int8: bool = False

    def label(self) -> str:
        name = "torch.compile" if self.mode == "compile" else "torch eager"
        if self.int8:
            return f"{name} (int8 PT2E)"
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


def candidates(target: Target) -> list[TorchSettings]:
    """Every setting tried on `target` (one thread), fast there or not: eager, compiled,
    compiled under each autocast precision the target might run fast, and on CPUs
    compiled after int8 quantization."""
    precisions = ("float16", "bfloat16") if target.is_gpu else ("bfloat16",)
    return [
        TorchSettings("eager"),
        TorchSettings("compile"),
        *(TorchSettings("compile", dtype) for dtype in precisions),
        *([] if target.is_gpu else [TorchSettings("compile", int8=True)]),
    ]


def unsupported(settings: TorchSettings, target: Target, cpu_flags: list[str]) -> str | None:
    """Why `settings` would not be fast on `target`, or None."""
    if settings.int8:
        return unsupported_int8(target, cpu_flags)
    return unsupported_autocast(settings.autocast, target, cpu_flags)


def positional_feeds(args: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Positional model arguments as feeds: the runtime passes feeds in their order."""
    return {f"arg{i}": array for i, array in enumerate(args)}


def device(target: Target) -> str:
    """The torch device string of `target`."""
    return f"cuda:{target.device_id}" if target.is_gpu else "cpu"


# Each program's module, made once: torch.compile keeps what it compiled with the module's
# code, and opening the program again (to judge its outputs) would compile it all again.
_MODULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _module_of(program: Any) -> Any:
    if program not in _MODULES:
        _MODULES[program] = program.module()
    return _MODULES[program]


def model_callable(model: Any, settings: TorchSettings, target: Target):
    """The model as a function of tensors on the target's device."""
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        # An unlifted program module refuses eval(); it has no train-time behaviour anyway.
        model = _module_of(model).to(device(target))
    else:
        model = model.to(device(target))
        # A module captured by torch.export (a PT2E-quantized one) refuses eval(): its
        # mode was fixed when it was captured.
        with contextlib.suppress(NotImplementedError):
            model.eval()
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


def weights_mb(model: Any) -> float:
    """Parameters and buffers in memory, MiB: what the model weighs where it is served."""
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        tensors = list(model.state_dict.values()) + list(model.constants.values())
    else:
        tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor)) / 2**20


class TorchModel(OpenedModel[TorchSettings]):
    """A PyTorch model on a target under one setting; feeds are its positional arguments,
    in their order."""

    def __init__(self, model: Any, target: Target, settings: TorchSettings) -> None:
        super().__init__(settings)
        self.target = target
        self.call = model_callable(model, settings, target)

    def _tensors(self, feeds: dict[str, np.ndarray]) -> list:
        import torch

        # A copy in the usual layout: numpy leaves any stride on a dimension of size 1, and
        # a compiled model compiles again for each new stride it sees.
        return [
            torch.from_numpy(np.array(a, order="C")).to(device(self.target)) for a in feeds.values()
        ]

    def _sync(self):
        import torch

        return torch.cuda.synchronize if self.target.is_gpu else None

    def bind(self, feeds: dict[str, np.ndarray]) -> Bound:
        tensors = self._tensors(feeds)
        sync = self._sync()
        self.call(*tensors)  # a compiled model builds its kernels for each new shape
        if sync:
            sync()
        return (lambda: self.call(*tensors)), sync

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return _flatten(self.call(*self._tensors(feeds)))

    @property
    def providers(self) -> list[str]:
        import torch

        return [f"torch {torch.__version__} {self.settings.label()}"]


class TorchRuntime(Runtime[TorchSettings]):
    """PyTorch itself, eager or compiled, in the autocast precisions the target runs fast."""

    name = RuntimeName.TORCH
    takes = "torch"

    def unavailable(self, target: Target) -> str | None:
        import torch

        if not target.is_gpu:
            return None
        if torch.version.cuda is None:
            return (
                f"this PyTorch build ({torch.__version__}) has no CUDA; "
                "install a CUDA build of torch"
            )
        if target.device_id >= torch.cuda.device_count():
            return f"PyTorch sees {torch.cuda.device_count()} CUDA device(s), not {target}"
        return None

    def settings(
        self, target: Target, cpu_flags: list[str], thread_counts: tuple[int, ...]
    ) -> list[TorchSettings]:
        fast = [s for s in candidates(target) if not unsupported(s, target, cpu_flags)]
        counts = thread_counts or (TorchSettings.threads,)
        return [dataclasses.replace(s, threads=n) for s in fast for n in counts]

    def label(self, settings: TorchSettings) -> str:
        return settings.label()

    def open(self, artifact: Any, target: Target, settings: TorchSettings) -> TorchModel:
        import torch

        if reason := self.unavailable(target):
            raise TargetUnavailableError(reason)
        torch.set_num_threads(settings.threads)
        return TorchModel(artifact, target, settings)

    def judging_batch(self, settings: TorchSettings, eval_batch: int, latency_batch: int) -> int:
        # A compiled model compiles again for each new shape (MiniLM: about 10 s), and the
        # latency batch is compiled already.
        return latency_batch if settings.mode == "compile" else eval_batch

    def operator_profile(
        self, artifact: Any, target: Target, feeds: dict[str, np.ndarray], settings: TorchSettings
    ) -> list[dict[str, object]]:
        from hardware.runtimes.torch_profile import torch_operator_profile

        return torch_operator_profile(self.open(artifact, target, settings), target, feeds)
