"""What a run measures and may pick: a Variant (a model file and the steps that made it)
or a RuntimeRow (the source run by another runtime under one setting), each with its
Status and typed figures, the same classes in the parent and in measuring children."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from hardware.profile import Measurements
from hardware.runtimes.base import RuntimeName
from optimize.records.fidelity import Fidelity
from passes.base import ModelKind, artifact_kind


class Status(StrEnum):
    """Where a candidate stands: built (a file exists), measured (figures exist), failed
    or skipped (its reason says why)."""

    BUILT = "built"
    MEASURED = "measured"
    FAILED = "failed"
    SKIPPED = "skipped"


class TimingKind(StrEnum):
    """How far a candidate was timed: screened (a short timing under one setting, to rank
    it); raced (screened, then timed only in the head to head, under the setting the
    fastest contender of its runtime was swept to); or in full (every setting, the whole
    budget, a fresh process)."""

    SCREEN = "screen"
    RACE = "race"
    FULL = "full"


@dataclass
class Step:
    """One pass applied: its name and options, what it did, and how long it took."""

    name: str
    label: str
    params: dict[str, Any]
    changed: bool
    seconds: float
    note: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True, eq=False, repr=False)
class Candidate:
    """Anything the run measures and may pick, with its figures once measured. Subclasses
    give `id`, `status`, `reason` and `label`; two candidates are the same only when they
    are the same object."""

    runtime: RuntimeName = RuntimeName.ONNXRUNTIME
    measurements: Measurements | None = None
    fidelity: Fidelity | None = None
    # Why the figures break the user's limits; None when within them. How many times the
    # loss the tolerance allows its outputs lost (1 at the limit; None: no measure of it).
    verdict: str | None = None
    times_allowed_loss: float | None = None
    measurements_cached: bool = False
    # How far it was timed (None: not yet); and, when screening showed it cannot win, why
    # it was not timed further.
    timing: TimingKind | None = None
    not_timed_further: str = ""
    # Where a failure came from (a traceback), for --debug.
    detail: str = ""

    def __post_init__(self) -> None:
        self.status = Status(self.status)

    @property
    def label(self) -> str:
        raise NotImplementedError

    @property
    def measured(self) -> bool:
        return self.status == Status.MEASURED

    @property
    def screened_only(self) -> bool:
        """Whether its figures are the screening's: it was not timed in full."""
        return self.timing in (TimingKind.SCREEN, TimingKind.RACE)

    @property
    def within_tolerance(self) -> bool:
        """Measured, its outputs judged, and within the limits."""
        return self.measured and self.fidelity is not None and self.verdict is None

    @property
    def outside_limits(self) -> bool:
        """Measured and known to break the limits; a candidate whose outputs were not
        judged (it could not win on speed) is not."""
        return self.measured and self.verdict is not None

    @property
    def within_tolerance_if_judged(self) -> bool | None:
        """Whether it is within the limits; None when measured with its outputs unjudged."""
        return None if self.measured and self.fidelity is None else self.within_tolerance

    @property
    def p50_ms(self) -> float | None:
        """The median batch-1 latency."""
        return self.measurements.latency.p50_ms if self.measurements else None

    @property
    def spread(self) -> float:
        """The batch-1 latency's inter-quartile range over its median."""
        return self.measurements.latency.spread if self.measurements else 0.0

    @property
    def size_mb(self) -> float | None:
        return self.measurements.size_mb if self.measurements else None

    @property
    def quality(self) -> float:
        """Higher is better: the task metric on labelled data when known, else mean output
        cosine; minus infinity before measuring."""
        return self.fidelity.quality if self.fidelity else float("-inf")

    def record(
        self, measurements: Measurements, fidelity: Fidelity | None, verdict: str | None
    ) -> None:
        """Keep the figures of a finished measurement."""
        self.status = Status.MEASURED
        self.measurements, self.fidelity, self.verdict = measurements, fidelity, verdict

    def fail(self, reason: str, detail: str = "") -> None:
        """Mark a failure, with the reason a person reads and the detail --debug shows."""
        self.status, self.reason, self.detail = Status.FAILED, reason, detail

    def __repr__(self) -> str:
        head = f"<{type(self).__name__} {self.label!r}: {self.status}"
        if not self.measured:
            return f"{head}{': ' + self.reason[:80] if self.reason else ''}>"
        quality = self.fidelity.metric or "cosine" if self.fidelity else "quality"
        limits = (
            "within the limits"
            if self.within_tolerance
            else f"outside: {self.verdict}"
            if self.outside_limits
            else "not judged"
        )
        return (
            f"{head}, p50 {self.p50_ms:.4g} ms, {quality} {self.quality:.6g}, "
            f"{self.size_mb:.3g} MB, {limits}>"
        )

    def figures_dict(self) -> dict[str, Any]:
        """The fields every candidate has in report.json."""
        return {
            "id": self.id,
            "label": self.label,
            "status": str(self.status),
            "runtime": self.runtime,
            "reason": self.reason,
            "measurements_cached": self.measurements_cached,
            "timing": self.timing,
            "not_timed_further": self.not_timed_further,
            "measurements": self.measurements.to_dict() if self.measurements else None,
            "fidelity": self.fidelity.to_dict() if self.fidelity else None,
            "within_tolerance": self.within_tolerance_if_judged,
            "verdict": self.verdict,
            "times_allowed_loss": self.times_allowed_loss,
        }


@dataclass(eq=False, repr=False)
class Variant(Candidate):
    """A model file and the steps that made it from the source."""

    id: str
    parent: str | None
    steps: list[Step]
    path: Path | None
    status: Status
    reason: str = ""
    unbuilt_step: str = ""  # the passes that did not run, as a label: "a → b"
    cached: bool = False

    @property
    def label(self) -> str:
        """The chain that made this variant, e.g. 'export → ort_graph(level=all)'; for a
        variant that was not built, the chain it would have had."""
        labels = [s.label for s in self.steps] + ([self.unbuilt_step] if self.unbuilt_step else [])
        return " → ".join(labels) or "original"

    @property
    def model_kind(self) -> ModelKind:
        """What the variant's file or folder is: 'torch' for one still a PyTorch program
        (pruned, not yet exported), a runtime's own format for a language model's."""
        return artifact_kind(self.path) if self.path is not None else "onnx"

    def to_dict(self, out_dir: Path) -> dict[str, Any]:
        """The variant in report.json, its path relative to the output folder."""
        path = None
        if self.path is not None:
            inside = self.path.is_relative_to(out_dir)
            path = str(self.path.relative_to(out_dir) if inside else self.path)
        return {
            **self.figures_dict(),
            "parent": self.parent,
            "runtime_settings": None,
            "cached": self.cached,
            "path": path,
            "steps": [asdict(s) for s in self.steps],
        }


@dataclass(eq=False, repr=False)
class RuntimeRow(Candidate):
    """The source model run by another runtime under one setting (PyTorch eager, or
    compiled in bfloat16): measured and picked like a variant, with no file of its own."""

    id: str
    parent: str
    runtime_label: str
    runtime_settings: dict[str, Any]
    status: Status = Status.BUILT
    reason: str = ""

    @property
    def label(self) -> str:
        return self.runtime_label

    def to_dict(self, out_dir: Path) -> dict[str, Any]:
        """The row in report.json, with the same keys a variant has."""
        return {
            **self.figures_dict(),
            "parent": self.parent,
            "runtime_settings": self.runtime_settings,
            "cached": False,
            "path": None,
            "steps": [],
        }
