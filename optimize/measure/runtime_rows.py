"""Rows of a runtime besides ONNX Runtime that takes the tool's ONNX files (OpenVINO): the
baseline, and the portable int8 variants within the limits, each run by the runtime under
each setting it sweeps, measured like any variant."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hardware.runtimes.base import Runtime
from hardware.targets import Target
from optimize.build.variant import Candidate, RuntimeRow, Status, Variant
from optimize.measure.artifacts import ModelFile
from optimize.measure.measurer import Measurer
from passes.registry import pass_class

Progress = Callable[[str, int, int], None]


class RowMaker(Protocol):
    """What makes the rows of a runtime beside ONNX Runtime, from the candidates so far:
    FileRows for runtimes that take ONNX files, TorchRuns for PyTorch on the source."""

    def measure(
        self,
        found: Runtime,
        candidates: list[Candidate],
        progress: Progress,
        should_stop: Callable[[], str | None] = ...,
    ) -> list[RuntimeRow]: ...


def worth_running(variants: list[Candidate]) -> list[Variant]:
    """The variants another runtime runs: the baseline (the first variant, the source or
    its plain export), and the measured ones not outside the limits whose last pass wrote
    portable int8."""
    files = [v for v in variants if isinstance(v, Variant) and v.path is not None]
    chosen = files[:1]
    for variant in files[1:]:
        made_by = pass_class(variant.steps[-1].name) if variant.steps else None
        # One whose outputs were not judged here, too slow in ONNX Runtime, may win there.
        if not variant.outside_limits and made_by and made_by.portable_int8:
            chosen.append(variant)
    return [v for v in chosen if v.measured]


@dataclass
class FileRows:
    """Measures the rows of runtimes that take ONNX files with the run's measurer; each
    variant's rows on a runtime once, however often `measure` is asked."""

    measurer: Measurer
    target: Target
    cpu_flags: list[str]
    # (runtime, variant id) of the rows made so far.
    done: set[tuple[str, str]] = field(default_factory=set)
    # The runtimes that cannot run here and were reported so: once per run.
    said_unavailable: set[str] = field(default_factory=set)

    def measure(
        self,
        found: Runtime,
        candidates: list[Candidate],
        progress: Progress,
        should_stop: Callable[[], str | None] = lambda: None,
    ) -> list[RuntimeRow]:
        """The rows of `found` on the candidates worth running not measured yet,
        screened, or skipped with the reason the runtime gives; no row starts once
        `should_stop` gives a reason."""
        chosen = [v for v in worth_running(candidates) if (found.name, v.id) not in self.done]
        self.done.update((found.name, v.id) for v in chosen)
        if reason := found.unavailable(self.target):
            if found.name in self.said_unavailable:
                return []
            self.said_unavailable.add(found.name)
            base = chosen[0].id if chosen else ""
            return [self._row(found, None, base, "", Status.SKIPPED, reason)]
        rows = []
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
