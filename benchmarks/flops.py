"""FLOPs of a model's forward pass at batch 1, the peak rates of this CPU in each precision,
and the precision a pick computes in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optimize.build.variant import Candidate, Variant
from optimize.report.results import Results
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
    """The CPU's peak rate in each precision it computes in: cores × clock × operations per
    cycle per core, the units assumed for each."""

    cores: int
    ghz: float
    # precision -> (operations per cycle per core, the units that do them)
    per_cycle: dict[str, tuple[int, str]]

    def gflops(self, precision: str = "fp32") -> float:
        """The peak in `precision` (fp32 where the CPU has no faster units for it)."""
        ops, _ = self.per_cycle.get(precision, self.per_cycle["fp32"])
        return self.cores * self.ghz * ops

    def describe(self) -> str:
        """The figures and the assumptions behind them, for a table's notes."""
        each = "; ".join(
            f"{precision}: {ops} per cycle per core ({units}) = {self.gflops(precision):.0f} G/s"
            for precision, (ops, units) in self.per_cycle.items()
        )
        return (
            f"peak = {self.cores} physical cores × {self.ghz:.2f} GHz × operations per cycle "
            f"in the pick's precision — {each}; at the clock /proc/cpuinfo reports (turbo and "
            "SMT are not counted)"
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
    """The peak rates from the core count and instruction-set flags, or None where the
    clock is unknown. Per core and cycle, with two vector units: fp32 FMA on 16 lanes with
    AVX-512 (2 × 16 × 2) or 8 with AVX2 (2 × 8 × 2); bf16 dot products (AVX-512-BF16) on
    twice the fp32 lanes; int8 dot products (VNNI) on four times them. A precision without
    its own instructions runs at the fp32 rate."""
    ghz = clock_ghz()
    if ghz is None:
        return None
    width = 16 if "avx512f" in cpu_flags else 8 if {"fma", "avx2"} <= set(cpu_flags) else 0
    if not width:
        return PeakRate(physical_cores, ghz, {"fp32": (8, "a 128-bit multiply and add unit")})
    bits = 32 * width
    rates = {"fp32": (4 * width, f"two {bits}-bit FMA units")}
    if "avx512_bf16" in cpu_flags:
        rates["bf16"] = (8 * width, f"two {bits}-bit bf16 dot-product units")
    vnni = {"avx512_vnni", "avx_vnni"} & set(cpu_flags)
    if vnni:
        rates["int8"] = (16 * width, f"two {bits}-bit VNNI int8 dot-product units")
    return PeakRate(physical_cores, ghz, rates)


def compute_precision(pick: Candidate | None, results: Results) -> str:
    """What the pick's heaviest arithmetic runs in: int8 after a pass that quantizes to
    int8 (in its own chain, or its file's where another runtime runs that file), else bf16
    where its runtime computes in bf16, else fp32."""
    if pick is None:
        return "fp32"
    made = pick if isinstance(pick, Variant) else results.variant(pick.parent)
    steps = made.steps if isinstance(made, Variant) else []
    if any(step.name.startswith("quantize_") and "int4" not in step.name for step in steps):
        return "int8"
    settings = pick.measurements.settings if pick.measurements else {}
    if "bf16" in (settings.get("precision"), settings.get("autocast")):
        return "bf16"
    return "fp32"


def of_peak(rate: float | None, peak: PeakRate | None, precision: str) -> str:
    """The rate as a share of the peak in `precision`, for a table cell."""
    if rate is None or peak is None:
        return "–"
    return f"{100 * rate / peak.gflops(precision):.1f}% of {precision}"
