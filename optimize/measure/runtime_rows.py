"""Rows for the runtimes besides ONNX Runtime that take the tool's ONNX files (OpenVINO):
the baseline, and the portable int8 variants within the limits, each run by each such
runtime under each setting it sweeps, measured like any variant."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware.runtimes.base import Runtime
from hardware.runtimes.registry import other_onnx_runtimes
from hardware.targets import Target
from optimize.build.variant import Candidate, RuntimeRow, Status, Variant
from optimize.measure.artifacts import ModelFile
from optimize.measure.measurer import Measurer
from passes.registry import pass_class

Progress = Callable[[str, int, int], None]


def onnx_runtimes(names: tuple[str, ...] | None = None) -> list[Runtime]:
    """The registered runtimes that take ONNX files, ONNX Runtime aside (it measures every
    variant already): those in `names`, or all of them."""
    return [r for r in other_onnx_runtimes() if names is None or r.name in names]


def worth_running(variants: list[Candidate]) -> list[Variant]:
    """The variants another runtime runs: the baseline (the first variant, the source or
    its plain export), and the measured ones within the limits whose last pass wrote
    portable int8."""
    files = [v for v in variants if isinstance(v, Variant) and v.path is not None]
    chosen = files[:1]
    for variant in files[1:]:
        made_by = pass_class(variant.steps[-1].name) if variant.steps else None
        if variant.within_tolerance and made_by and made_by.portable_int8:
            chosen.append(variant)
    return [v for v in chosen if v.measured]


@dataclass
class RuntimeRows:
    """Measures the rows of the other ONNX runtimes with the run's measurer; each variant's
    rows once, however often `measure` is asked."""

    measurer: Measurer
    target: Target
    cpu_flags: list[str]
    done: set[str] = field(default_factory=set)
    # Whether a runtime that cannot run here has been reported: once per run.
    unavailable_said: bool = False

    def measure(
        self,
        variants: list[Candidate],
        names: tuple[str, ...] | None,
        progress: Progress,
        should_stop: Callable[[], str | None] = lambda: None,
    ) -> list[RuntimeRow]:
        """Every row not measured yet, screened, or skipped with the reason the runtime
        gives; no row starts once `should_stop` gives a reason."""
        rows = []
        chosen = [v for v in worth_running(variants) if v.id not in self.done]
        self.done.update(v.id for v in chosen)
        say_unavailable, self.unavailable_said = not self.unavailable_said, True
        for found in onnx_runtimes(names):
            if reason := found.unavailable(self.target):
                if not say_unavailable:
                    continue
                base = chosen[0].id if chosen else ""
                rows.append(self._row(found, None, base, "", Status.SKIPPED, reason))
                continue
            for variant in chosen:
                for sweep in self._sweeps(found):
                    row = self._row(found, sweep[0], variant.id, variant.label)
                    rows.append(row)
                    if reason := should_stop():
                        row.status, row.reason = Status.SKIPPED, reason
                        continue
                    progress(f"screening {row.label}", 0, 0)
                    self.measurer.measure(row, found.name, ModelFile(variant.path), sweep)
        return rows

    def _sweeps(self, found: Runtime) -> list[tuple]:
        """One sweep over the thread counts for each other setting the runtime tries (a
        precision, say): the runtime lists its settings in the same order for each count."""
        per_count = [
            found.settings(self.target, self.cpu_flags, (n,)) for n in self.measurer.thread_counts
        ]
        return [tuple(settings) for settings in zip(*per_count, strict=True)]

    def _row(
        self,
        found: Runtime,
        settings,
        parent: str,
        parent_label: str,
        status: Status = Status.BUILT,
        reason: str = "",
    ) -> RuntimeRow:
        plain = dataclasses.asdict(settings) if settings is not None else {}
        key = json.dumps([parent, found.name, plain], sort_keys=True)
        name = found.label(settings) if settings is not None else found.name
        label = f"{name} on {parent_label}" if parent_label else name
        return RuntimeRow(
            hashlib.sha256(key.encode()).hexdigest()[:16],
            parent,
            label,
            plain,
            status,
            reason,
            runtime=found.name,
        )
