"""FLOPs of a model's forward pass at batch 1, and the peak fp32 rate of this CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optimize.source.load import load_source
from passes.torch_run import run_torch


def flops_per_sample(model_path: Path) -> int:
    """FLOPs of one batch-1 forward pass of the PyTorch model in `model_path`, on its own
    saved example inputs: matrix products, convolutions and attention, two per
    multiply-add, as torch.utils.flop_counter counts them; element-wise work is left out."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_attention(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    # PyTorch runs scaled_dot_product_attention on CPU through a kernel the counter has no
    # formula for; without this, attention's two matrix products would count as zero.
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_attention}
    source = load_source(model_path)
    feeds = {name: array[:1] for name, array in source.sample_inputs.items()}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        run_torch(source.model, feeds, source.inputs)
    return counter.get_total_flops()


@dataclass(frozen=True)
class PeakRate:
    """The CPU's peak fp32 rate: cores × clock × FLOPs per cycle per core."""

    cores: int
    ghz: float
    flops_per_cycle: int
    units: str

    @property
    def gflops(self) -> float:
        return self.cores * self.ghz * self.flops_per_cycle

    def describe(self) -> str:
        """The figure and the assumptions behind it, for a table's notes."""
        return (
            f"peak = {self.cores} physical cores × {self.ghz:.2f} GHz × {self.flops_per_cycle} "
            f"fp32 FLOPs per cycle per core = {self.gflops:.0f} GFLOP/s, assuming "
            f"{self.units} per core at the clock /proc/cpuinfo reports "
            "(turbo and SMT are not counted)"
        )


def clock_ghz(cpuinfo: Path = Path("/proc/cpuinfo")) -> float | None:
    """The first core's clock as /proc/cpuinfo reports it, or None where it does not."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            return float(value) / 1000
    return None


def cpu_peak(physical_cores: int, cpu_flags: list[str]) -> PeakRate | None:
    """The peak fp32 rate from the core count and instruction-set flags, or None where the
    clock is unknown. Per core and cycle: two FMA units of 16 fp32 lanes with AVX-512
    (2 × 16 × 2), of 8 lanes with AVX2 and FMA (2 × 8 × 2); a 4-lane multiply and a 4-lane
    add without FMA."""
    ghz = clock_ghz()
    if ghz is None:
        return None
    if "avx512f" in cpu_flags:
        return PeakRate(physical_cores, ghz, 64, "two 512-bit FMA units")
    if "fma" in cpu_flags and "avx2" in cpu_flags:
        return PeakRate(physical_cores, ghz, 32, "two 256-bit FMA units")
    return PeakRate(physical_cores, ghz, 8, "a 128-bit multiply and a 128-bit add unit")
