"""Where a candidate spends its time, operator by operator, in its own runtime: taken in
the warm worker under the setting it was fastest with, and kept for re-runs."""

from __future__ import annotations

import dataclasses

from optimize.build.variant import Candidate, Variant
from optimize.isolation import IsolatedRunError
from optimize.measure.conditions import settings_digest
from optimize.measure.measurer import Measurer
from optimize.measure.worker import profile_candidate


def profile(measurer: Measurer, candidate: Candidate) -> list[dict] | None:
    """Where the candidate spends its time in its runtime, under the setting it was
    fastest with; None where its runtime has no profiler, empty when profiling fails (a
    diagnosis: the figures stand without it)."""
    job = measurer.jobs.get(candidate.id)
    if job is None or not candidate.measured:
        return []
    if candidate.id not in measurer.profiles:
        best = job.settings_from(candidate.measurements.settings)
        profiling = dataclasses.replace(job, settings=(best,), workload=measurer.workload)
        name = f"{candidate.id}-{settings_digest(best)}"
        # Kept wrapped: a runtime without a profiler answers None, which must be kept too,
        # or every re-run would load the model again to hear it.
        try:
            measurer.profiles[candidate.id] = measurer.reused(
                "operator_profiles",
                name,
                lambda: {
                    "rows": measurer.run_unit(profile_candidate, profiling, f"profiling {name}")
                },
            )["rows"]
        except IsolatedRunError:
            measurer.profiles[candidate.id] = []
    return measurer.profiles[candidate.id]


def profile_pick(
    measurer: Measurer, pick: Candidate | None, pick_onnx: Variant | None
) -> list[dict]:
    """The pick's operator profile in its runtime, or where that runtime has no profiler,
    the best ONNX variant's in ONNX Runtime."""
    found = profile(measurer, pick) if pick is not None else None
    if found is None and pick_onnx is not None:
        found = profile(measurer, pick_onnx)
    return found or []
