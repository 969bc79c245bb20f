"""PyTorch runtime rows: the source model run by PyTorch itself (eager and compiled, in
the precisions the target runs fast), measured beside the ONNX variants."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hardware.runtimes.base import Runtime, RuntimeName
from hardware.runtimes.pytorch import TorchSettings, candidates, unsupported
from hardware.targets import Target
from optimize.build.variant import Candidate, RuntimeRow, Status, Variant
from optimize.measure.artifacts import TorchSource
from optimize.measure.measurer import Measurer
from optimize.source.load import Source
from optimize.store import compile_cache_dir
from passes.preprocess_spec import PreprocessSpec

Progress = Callable[[str, int, int], None]

# The most torch.compile is taken to gain over eager. The largest gain in the runs of
# benchmarks/results/suite.md (see its history) is 2.4× (compiled in bfloat16 autocast,
# MiniLM); 3× leaves a quarter more. Compiled in float32 it is 1.7× (the tiny transformer);
# 2× leaves room.
# Compiling a transformer takes tens of seconds on a small CPU (MiniLM: 20 s).
COMPILE_CATCH_UP = 3.0
FLOAT32_COMPILE_CATCH_UP = 2.0
# A compile that took longer than this is not repeated for each thread count of the sweep.
SWEPT_COMPILE_MS = 5000.0


@dataclass
class TorchRuns:
    """The PyTorch rows of one run: the source run by PyTorch itself under each setting,
    in a child process that loads the source again."""

    source: Source
    # The run's measurer: its workload, thread counts, time limit and verdicts.
    measurer: Measurer
    target: Target
    cpu_flags: list[str]
    # The id the source's rows hang from (the root of every chain).
    root_id: str
    preprocess: PreprocessSpec | None = None
    # What an int8 row calibrates on: the run's calibration inputs.
    calibration: dict[str, np.ndarray] | None = None
    # The candidate compiling must catch up with (the fastest within the limits), or None
    # to compile whatever eager screened at.
    fastest_of: Callable[[list[Candidate]], Candidate | None] = lambda candidates: None

    def artifact(self, settings: TorchSettings) -> TorchSource:
        """What a child process loads to run the source under `settings`: the source
        again, quantized by PT2E for an int8 row."""
        return TorchSource(
            spec=self.source.spec,
            preprocess=self.preprocess,
            int8=settings.int8,
            calibration=self.calibration if settings.int8 else None,
            compile_cache=compile_cache_dir(self.measurer.cache_dir),
        )

    def measure(
        self,
        found: Runtime,
        candidates: list[Candidate],
        progress: Progress,
        should_stop: Callable[[], str | None] = lambda: None,
    ) -> list[RuntimeRow]:
        """Every row of `found` (PyTorch) for this source and target, screened, or skipped
        with why. Eager goes first: compiling costs seconds, and is skipped when eager is
        too far behind the fastest of `candidates` within the limits for it to catch up.
        No row starts once `should_stop` gives a reason."""
        fastest = self.fastest_of(candidates)
        rows = torch_rows(self.source, self.target, self.cpu_flags, self.root_id)
        for row in rows:
            reason = (
                should_stop()
                or hopeless(row, rows[0], fastest)
                or int8_outside_limits(row, candidates)
            )
            if row.status == Status.BUILT and reason:
                row.status, row.reason = Status.SKIPPED, reason
            if row.status == Status.BUILT:
                progress(f"screening {row.label}", 0, 0)
                settings = TorchSettings(**row.runtime_settings)
                sweep = tuple(
                    dataclasses.replace(settings, threads=n) for n in self.measurer.thread_counts
                )
                self.measurer.measure(row, found.name, self.artifact(settings), sweep)
                if settings.mode == "compile" and _compiled_slowly(row):
                    job = self.measurer.jobs[row.id]
                    self.measurer.jobs[row.id] = dataclasses.replace(job, settings=sweep[:1])
        return rows


def _compiled_slowly(row: RuntimeRow) -> bool:
    """Whether the row's first call, which compiles it, took so long that its full timing
    keeps to the thread count it was screened at: each other count compiles it again, at
    batch 1 and at the throughput batch (MiniLM in bfloat16: 57 s timed in full over two
    thread counts)."""
    return row.measured and row.measurements.startup_ms > SWEPT_COMPILE_MS


def hopeless(row: RuntimeRow, eager: RuntimeRow, fastest: Candidate | None) -> str | None:
    """Why compiling the row is not worth its seconds, or None."""
    if row is eager or not eager.measured or eager.outside_limits or fastest is None:
        return None
    settings = TorchSettings(**row.runtime_settings)
    in_float32 = settings.autocast == "float32" and not settings.int8
    catch_up = FLOAT32_COMPILE_CATCH_UP if in_float32 else COMPILE_CATCH_UP
    behind = eager.p50_ms / fastest.p50_ms
    if behind < catch_up:
        return None
    return (
        f"not compiled: torch eager screened at {behind:.1f}× the latency of {fastest.label}, "
        f"and compiling{' in float32' if in_float32 else ''} gains well under "
        f"{catch_up:g}× over eager"
    )


# The ONNX passes that quantize weights and activations to int8 from calibration, as PT2E
# does with X86InductorQuantizer (per-channel weights, min-max observed activations).
STATIC_INT8_PASSES = ("quantize_static", "quantize_nncf")


def int8_outside_limits(row: RuntimeRow, candidates: list[Candidate]) -> str | None:
    """Why quantizing the row to int8 by PT2E is not worth its seconds: every variant
    statically quantized to int8 the same way is outside the limits. None otherwise."""
    if not row.runtime_settings.get("int8"):
        return None
    static = [
        c
        for c in candidates
        if isinstance(c, Variant)
        and c.measured
        and any(s.name in STATIC_INT8_PASSES for s in c.steps)
    ]
    if not static or not all(c.outside_limits for c in static):
        return None
    first = static[0]
    return (
        f"not compiled: no variant statically quantized to int8 is within the limits "
        f"({first.label}: {first.verdict}{', …' if len(static) > 1 else ''}), and PT2E "
        "quantizes weights and activations the same way"
    )


def torch_rows(
    source: Source, target: Target, cpu_flags: list[str], root_id: str
) -> list[RuntimeRow]:
    """The PyTorch rows worth measuring for this source and target, with skipped ones and
    their reasons. ONNX sources have no PyTorch model and get none."""
    if source.model_kind != "torch":
        return []
    rows = []
    for settings in candidates(target):
        key = json.dumps([root_id, RuntimeName.TORCH, dataclasses.asdict(settings)], sort_keys=True)
        row = RuntimeRow(
            hashlib.sha256(key.encode()).hexdigest()[:16],
            root_id,
            settings.label(),
            dataclasses.asdict(settings),
            runtime=RuntimeName.TORCH,
        )
        if reason := unsupported(settings, target, cpu_flags):
            row.status, row.reason = Status.SKIPPED, reason
        elif settings.mode == "compile" and source.form == "torchscript":
            row.status = Status.SKIPPED
            row.reason = "torch.compile does not take a TorchScript module"
        rows.append(row)
    return rows
