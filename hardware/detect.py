"""What this host offers for inference: CPU, instruction sets, memory, runtimes and GPUs."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata

from hardware.targets import Target, TargetUnavailableError

# Instruction-set flags (as /proc/cpuinfo names them) that decide which kernels run fast.
INFERENCE_CPU_FLAGS = (
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)


@dataclass
class HostInfo:
    """A description of this machine as it matters to inference."""

    cpu_model: str
    logical_cores: int
    physical_cores: int
    cpu_flags: list[str]
    memory_gb: float
    os: str
    python: str
    versions: dict[str, str]
    ort_providers: list[str]
    cuda_devices: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def class_facts(self) -> dict[str, object]:
        """What two machines must share to measure alike (their hardware class): all but
        the memory size."""
        return {k: v for k, v in self.to_dict().items() if k != "memory_gb"}


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = "", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = value.split()
    except OSError:
        pass  # not Linux: fall back to what platform knows
    model = model or platform.processor() or platform.machine()
    return model, [f for f in INFERENCE_CPU_FLAGS if f in flags]


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape results, 'missing' where not installed."""
    return distribution_versions(
        (
            "optimize",
            "torch",
            "onnx",
            "onnxruntime",
            "onnxruntime-gpu",
            "onnxscript",
            "numpy",
            "openvino",
        )
    )


@functools.cache
def distribution_versions(names: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each distribution, 'missing' where it is not installed."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def _torch_cuda_devices() -> list[dict[str, object]]:
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(
            {
                "index": index,
                "name": props.name,
                "memory_gb": round(props.total_memory / 2**30, 1),
                "compute_capability": f"{props.major}.{props.minor}",
                "cuda": torch.version.cuda,
                "driver": _driver_version(),
            }
        )
    return devices


def _driver_version() -> str | None:
    """The NVIDIA driver version nvidia-smi reports, or None without it."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    listing = subprocess.run(query, capture_output=True, text=True, check=False)
    lines = listing.stdout.split()
    return lines[0] if listing.returncode == 0 and lines else None


def describe_host(include_gpus: bool = True) -> HostInfo:
    """Read this machine's facts; `include_gpus` asks torch for CUDA devices (slower)."""
    import onnxruntime as ort
    import psutil

    model, flags = _cpuinfo()
    return HostInfo(
        cpu_model=model,
        logical_cores=os.cpu_count() or 1,
        physical_cores=psutil.cpu_count(logical=False) or 1,
        cpu_flags=flags,
        memory_gb=round(psutil.virtual_memory().total / 2**30, 1),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        versions=package_versions(),
        ort_providers=list(ort.get_available_providers()),
        cuda_devices=_torch_cuda_devices() if include_gpus else [],
    )


def tensorrt_available() -> bool:
    """Whether this ONNX Runtime build has the TensorRT provider."""
    import onnxruntime as ort

    return "TensorrtExecutionProvider" in ort.get_available_providers()


def check_target(target: Target) -> None:
    """Raise TargetUnavailableError, saying what is missing and how to get it, when this
    machine cannot run `target`."""
    if not target.is_gpu:
        return
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        raise TargetUnavailableError(
            "--target gpu needs ONNX Runtime's CUDA provider, which this install lacks "
            f"(it has {', '.join(providers)}): "
            "pip uninstall onnxruntime && pip install onnxruntime-gpu, on a machine with an "
            "NVIDIA GPU and its driver (see the README's GPU section)"
        )
    count = _cuda_device_count()
    if count == 0:
        raise TargetUnavailableError(
            "--target gpu: no CUDA device is visible (check nvidia-smi, the NVIDIA driver and "
            "CUDA_VISIBLE_DEVICES)"
        )
    if target.device_id >= count:
        raise TargetUnavailableError(
            f"--target gpu:{target.device_id}: only {count} CUDA device(s) visible, "
            f"use an index from 0 to {count - 1}"
        )


def _cuda_device_count() -> int:
    """CUDA devices visible, asked of torch when it has CUDA, else of nvidia-smi."""
    import shutil
    import subprocess

    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count()
    except ImportError:
        pass  # a torch-less install still can use ONNX Runtime's CUDA provider
    if shutil.which("nvidia-smi") is None:
        return 0
    listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))
