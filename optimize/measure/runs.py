"""Measuring variants from the parent process: each in a child process, with stored figures
reused, and the verdict against the user's limits recorded on the variant."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hardware.detect import describe_host
from hardware.profile import NOISY_SPREAD
from hardware.session import SessionSettings
from hardware.targets import Target
from optimize.build.builder import Variant
from optimize.isolation import IsolatedRunError, run_isolated
from optimize.measure.cache import load_measurements, store_measurements
from optimize.measure.fidelity import Fidelity, limits_verdict, tolerance_verdict
from optimize.measure.workers import (
    MeasureJob,
    Workload,
    measure_fidelity,
    measure_variant,
    profile_operators,
)


def thread_options(target: Target) -> tuple[SessionSettings, ...]:
    """The thread settings each variant is measured under: on CPU, one intra-op thread per
    physical core (ONNX Runtime's default) and a single thread, which wins on small models
    where waking a thread pool costs more than the work it shares."""
    if target.is_gpu:
        return (SessionSettings(),)
    cores = describe_host(include_gpus=False).physical_cores
    counts = sorted({cores, 1}, reverse=True)
    return tuple(SessionSettings(intra_op_threads=n) for n in counts)


def measure_one(
    variant: Variant,
    workload: Workload,
    thread_options: tuple[SessionSettings, ...],
    options,
    cache: tuple[Path, str],
) -> None:
    """Profile an ONNX variant and judge its fidelity, in a child process; reuse stored
    figures taken under the same conditions, and store new ones."""
    variants_dir, key = cache
    folder = variant.path.parent
    cacheable = folder.parent == variants_dir
    stored = load_measurements(folder, key) if cacheable and options.reuse_measurements else None
    if stored is not None:
        variant.measurements_cached = True
        record(variant, lambda: stored, options)
        return
    job = MeasureJob(variant.path, workload, thread_options)
    record(variant, lambda: run_isolated(measure_variant, job, options.measure_timeout_s), options)
    if cacheable and variant.status == "measured":
        store_measurements(
            folder, key, {"measurements": variant.measurements, "fidelity": variant.fidelity}
        )


def record(variant: Variant, measure: Callable[[], dict], options) -> None:
    """Store what `measure` returns on `variant`, or mark it failed with the reason."""
    try:
        data = measure()
    except IsolatedRunError as exc:
        variant.status, variant.reason = "failed", f"measuring failed: {exc}"
        variant.detail = exc.child_traceback
        return
    variant.status = "measured"
    variant.measurements = data["measurements"]
    variant.fidelity = data["fidelity"]
    variant.verdict = tolerance_verdict(
        Fidelity.from_dict(data["fidelity"]), options.tolerance
    ) or limits_verdict(data["measurements"], options.tolerance)


def thread_counts(settings: tuple[SessionSettings, ...], host) -> tuple[int, ...]:
    """The intra-op thread counts ONNX Runtime is measured with, for PyTorch as well."""
    counts = tuple(s.intra_op_threads for s in settings if s.intra_op_threads > 0)
    return counts or (host.physical_cores,)


def operator_profile_of(variant: Variant, workload: Workload, options) -> list[dict]:
    """Where the pick spends its time, under the thread setting it was fastest with."""
    best_settings = SessionSettings(**variant.measurements["settings"])
    job = MeasureJob(variant.path, workload, (best_settings,))
    try:
        return run_isolated(profile_operators, job, options.measure_timeout_s)
    except IsolatedRunError:
        return []  # the profile is a diagnosis; the run's figures stand without it


def judge(
    variant: Variant, workload: Workload, thread_options: tuple[SessionSettings, ...], options
) -> tuple[Fidelity, str | None]:
    """Fidelity of a fallback candidate and its verdict, without the full profile."""
    job = MeasureJob(variant.path, workload, thread_options)
    try:
        fidelity = Fidelity.from_dict(
            run_isolated(measure_fidelity, job, options.measure_timeout_s)
        )
    except IsolatedRunError as exc:
        nan = float("nan")
        return Fidelity(0, nan, nan, nan, nan, 0), f"failed: {exc}"
    return fidelity, tolerance_verdict(fidelity, options.tolerance)


def noise_warning(variants: list[Variant]) -> str | None:
    """A warning naming the measured variants whose latency spread is too wide to rank them
    against others that differ by less, or None."""
    noisy = [
        f"{v.label} ({100 * v.measurements['latency']['spread']:.0f}%)"
        for v in variants
        if v.status == "measured" and v.measurements["latency"]["spread"] > NOISY_SPREAD
    ]
    if not noisy:
        return None
    return (
        f"noisy latency (spread over {100 * NOISY_SPREAD:.0f}% of the median): "
        f"{', '.join(noisy)}; a difference smaller than the spread is noise: measure longer "
        "(--measure-seconds) on a quieter machine before trusting it"
    )
