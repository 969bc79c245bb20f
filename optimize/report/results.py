"""The outcome of a run: every variant with its figures, the front, the pick, the context."""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hardware.runtimes.base import RuntimeName
from optimize.build.variant import Candidate, RuntimeRow, Variant
from optimize.choose.contest import Contest
from optimize.choose.objective import RankKey, rank_key
from optimize.choose.select import PICK_RULE, Choice, closest, generative_rule, pick
from optimize.config.chains import Chain
from optimize.config.limits import Limits
from optimize.config.recipe import Recipe
from optimize.errors import UserError
from optimize.report.generation_table import is_generative
from optimize.report.variant_records import COLUMNS, variant_records
from optimize.search.fallback import Repair
from optimize.search.found import Found
from optimize.search.prune_sweep import PruneSweep
from optimize.source.load import Source
from passes.base import TensorSpec
from passes.preprocess_spec import PreprocessSpec
from passes.registry import pass_class

SCHEMA_VERSION = 1


@dataclass(repr=False)
class Results:
    """What `optimize.api.run` returns; report.json is its `to_dict()`, `to_pandas()` a
    DataFrame of its candidates."""

    source_path: Path
    source_form: str
    source_id: str
    inputs: list[TensorSpec]
    target: str
    variants: list[Candidate]
    pick: Candidate | None
    pick_onnx: Variant | None
    pareto_front: list[Candidate]
    tolerance: Limits
    eval_data: dict[str, Any]
    environment: dict[str, Any]
    out_dir: Path
    warnings: list[str] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    prune_sweep: PruneSweep | None = None
    preprocessing: str = ""  # the summary of the preprocessing compiled into every variant
    chains: list[dict[str, Any]] = field(default_factory=list)
    op_profile: list[dict[str, Any]] = field(default_factory=list)
    contest: Contest | None = None
    # Seconds each stage took, in order, up to writing the outputs.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # The load sweep of the pick (optimize.serve.load_sweep.LoadSweep), in process and
    # through a server, when the run was asked for it.
    load_sweeps: list[Any] = field(default_factory=list)
    # A language model's pick served to concurrent streams
    # (optimize.serve.stream_sweep.StreamSweep), when the run was asked for a load sweep.
    stream_sweep: Any = None
    # What a Hugging Face folder's model was loaded for (None: its default, or no folder).
    task: str | None = None
    # What a language model's pick is fastest at (optimize.choose.objective).
    objective: str | None = None
    # When the run ended, ISO 8601 in UTC.
    finished_at: str = ""
    # Where a cluster run's units ran (optimize.cluster): its address, hardware class and
    # the node of each unit; None for a run on this machine.
    cluster: dict[str, Any] | None = None

    @classmethod
    def of(
        cls,
        source: Source,
        recipe: Recipe,
        found: Found,
        choice: Choice,
        chains: list[Chain],
        preprocessing: PreprocessSpec | None,
        **context: Any,
    ) -> Results:
        """The Results of a run from what its stages gave: the source, the recipe, the
        candidates found, the choice among them, the chains tried and the preprocessing;
        `context` names the remaining fields (contest, warnings, environment, ...)."""
        return cls(
            source_path=source.path,
            source_form=source.form,
            source_id=source.source_id,
            inputs=source.inputs,
            target=recipe.target,
            variants=found.variants,
            pick=choice.pick,
            pick_onnx=choice.pick_onnx,
            pareto_front=choice.front,
            tolerance=recipe.limits,
            repairs=found.repairs,
            prune_sweep=found.prune_sweep,
            chains=[{"passes": [p.label() for p in c.passes], "why": c.why} for c in chains],
            preprocessing=preprocessing.summary() if preprocessing else "",
            task=recipe.task,
            objective=recipe.objective,
            finished_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **context,
        )

    def __repr__(self) -> str:
        pick = "no pick"
        if self.pick is not None:
            pick = f"pick {self.pick.label!r} at {self.pick.p50_ms:.4g} ms"
            if speedup := self.speedup:
                pick += f" ({speedup.describe()})"
        return (
            f"<Results {self.source_path.name} on {self.target}: {len(self.variants)} "
            f"candidates, {pick}; {self.out_dir}>"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: the pick and the candidates within the limits, fastest first."""
        from html import escape

        rows = sorted(
            (c for c in self.variants if c.within_tolerance), key=lambda c: c.p50_ms or 0.0
        )
        cells = "".join(
            f"<tr{' style=font-weight:bold' if c is self.pick else ''}><td>{escape(c.label)}</td>"
            f"<td>{c.p50_ms:.4g}</td><td>{c.quality:.6g}</td><td>{c.size_mb:.3g}</td></tr>"
            for c in rows
        )
        return (
            f"<p>{escape(repr(self))}</p><table><tr><th>within the limits</th><th>p50 ms</th>"
            f"<th>quality</th><th>size MB</th></tr>{cells}</table>"
        )

    def to_pandas(self):
        """The candidates as a pandas DataFrame, one row each (see variant_records)."""
        try:
            import pandas
        except ImportError:
            raise UserError(
                "Results.to_pandas needs pandas: pip install 'optimize[pandas]'"
            ) from None
        return pandas.DataFrame(self.records(), columns=COLUMNS)

    def records(self) -> list[dict[str, Any]]:
        """The candidates as flat records of plain values (the rows of variants.csv)."""
        return variant_records(self.variants, self.pick, self.pareto_front)

    def variant(self, variant_id: str) -> Candidate:
        """The variant or runtime row with this id."""
        return next(v for v in self.variants if v.id == variant_id)

    @property
    def generative(self) -> bool:
        """Whether the candidates are a language model's, measured in tokens."""
        return is_generative(self.variants)

    @property
    def rule(self) -> str:
        """How the pick was chosen."""
        if self.generative:
            return generative_rule(self.objective or "decode")
        return self.contest.rule if self.contest else PICK_RULE

    @property
    def rank_key(self) -> RankKey:
        """The figure the candidates were ranked by (optimize.choose.objective)."""
        return rank_key(self.objective if self.generative else None)

    @property
    def tolerance_text(self) -> str:
        """The limits a candidate had to meet, in one sentence."""
        if self.generative:
            increase = self.tolerance.max_perplexity_increase
            return f"perplexity at most +{increase:g}% of the original's"
        return self.tolerance.describe()

    @property
    def pick_file(self) -> str | None:
        """Where the pick is in the output folder: best.onnx for an ONNX Runtime variant,
        <runtime>/<runtime>_pick.json for a runtime row, <runtime>/<its folder or file>
        for a language model's."""
        if self.pick is None:
            return None
        if self.generative:
            return f"{self.pick.runtime}/{self.pick.path.name}"
        if isinstance(self.pick, RuntimeRow):
            return f"{self.pick.runtime}/{self.pick.runtime}_pick.json"
        return "best.onnx"

    @property
    def model_variants(self) -> list[Variant]:
        """The variants that are model files (not runtime rows), in order."""
        return [v for v in self.variants if isinstance(v, Variant)]

    def best_per_runtime(self) -> dict[str, str]:
        """The picked variant id for each runtime that has one within tolerance, by the
        same rule as the overall pick (head-to-head included)."""
        runtimes = dict.fromkeys(v.runtime for v in self.variants)
        best = {
            rt: pick([v for v in self.variants if v.runtime == rt], self.contest, self.rank_key)
            for rt in runtimes
        }
        return {rt: v.id for rt, v in best.items() if v is not None}

    @property
    def why_no_pick(self) -> str:
        """Why nothing was picked, in one sentence: nothing could be measured (saying why
        the baseline could not), or nothing measured is within the limits."""
        if any(v.measured for v in self.variants):
            return "No variant is within tolerance: nothing was picked"
        first = self.variants[0] if self.variants else None
        why = f" (the baseline, {first.label}: {first.reason})" if first and first.reason else ""
        return f"No variant could be measured{why}: nothing was picked"

    @property
    def closest(self) -> Variant | None:
        """When nothing is within tolerance, the best ONNX variant found, saved as
        closest.onnx (a PyTorch row has no file of its own to save, a language model's
        runtime folder is no ONNX file)."""
        if self.pick:
            return None
        return closest([v for v in self.model_variants if v.model_kind == "onnx"])

    @property
    def profiler_name(self) -> str:
        """Whose profiler timed the pick's operators: PyTorch's for a PyTorch row."""
        if self.pick is not None and self.pick.runtime == RuntimeName.TORCH:
            return "PyTorch's profiler (self time per aten operator)"
        return "ONNX Runtime's profiler"

    @property
    def baseline(self) -> Variant | None:
        """The unoptimized ONNX model: the source itself, or its plain export, with the
        preprocessing in front when the run has one."""
        first = self.variants[0] if self.variants else None
        return first if first and all(_is_lead_in(s.name) for s in first.steps) else None

    @property
    def speedup(self) -> Speedup | None:
        """The pick's speed over the baseline's: from the head-to-head when both raced in
        it (the figures the choice rested on), else from their own measurements."""
        pick, baseline = self.pick, self.baseline
        if pick is None or baseline is None or not pick.p50_ms or not baseline.p50_ms:
            return None
        contest = self.contest
        mine = contest.entry(pick.id) if contest else None
        theirs = contest.entry(baseline.id) if contest else None
        if mine and theirs and pick is not baseline:
            ratio = theirs["p50_ms"] / mine["p50_ms"]
            # Tied with the fastest, as the pick is: within noise of it.
            return Speedup(ratio, mine["p50_ms"], theirs["p50_ms"], True, theirs["tie"])
        ratio = baseline.p50_ms / pick.p50_ms
        return Speedup(ratio, pick.p50_ms, baseline.p50_ms, False, pick is baseline)

    def to_dict(self) -> dict[str, Any]:
        """The versioned, machine-readable report."""
        return {
            "schema_version": SCHEMA_VERSION,
            "source": {
                "path": str(self.source_path),
                "form": self.source_form,
                "sha256": self.source_id,
                "inputs": [asdict(s) for s in self.inputs],
                "task": self.task,
            },
            "target": self.target,
            "preprocessing": self.preprocessing or None,
            "eval_data": self.eval_data,
            "tolerance": self.tolerance.model_dump(),
            "pick_rule": self.rule,
            "objective": self.objective,
            "head_to_head": asdict(self.contest) if self.contest else None,
            "stage_seconds": self.stage_seconds,
            "finished_at": self.finished_at,
            "cluster": self.cluster,
            "pick": self.pick.id if self.pick else None,
            "pick_onnx": self.pick_onnx.id if self.pick_onnx else None,
            "best_model": "best.onnx" if self.pick_onnx else None,
            "torch_pick": self.pick_file
            if self.pick and self.pick.runtime == RuntimeName.TORCH
            else None,
            "runtime_pick": self.pick_file if isinstance(self.pick, RuntimeRow) else None,
            "best_per_runtime": self.best_per_runtime(),
            "closest": self.closest.id if self.closest else None,
            "closest_model": "closest.onnx" if self.closest else None,
            "pareto_front": [v.id for v in self.pareto_front],
            "warnings": self.warnings,
            "chains": self.chains,
            "pick_operator_profile": self.op_profile,
            "repairs": [asdict(r) for r in self.repairs],
            "prune_sweep": asdict(self.prune_sweep) if self.prune_sweep else None,
            "load_sweeps": [sweep.to_dict() for sweep in self.load_sweeps],
            "stream_sweep": self.stream_sweep.to_dict() if self.stream_sweep else None,
            "environment": self.environment,
            "variants": [v.to_dict(self.out_dir) for v in self.variants],
        }


@dataclass(frozen=True)
class Speedup:
    """The pick against the baseline at batch 1: the ratio of their medians, the medians,
    whether they were timed head to head, and whether they tied there (within noise; a
    pick that is the baseline ties with itself)."""

    ratio: float
    pick_ms: float
    baseline_ms: float
    head_to_head: bool
    tie: bool

    def describe(self) -> str:
        """One phrase, e.g. '2.31× the baseline', 'a tie with the baseline (0.99×, head to
        head)' or 'the baseline itself'."""
        if self.tie and not self.head_to_head:
            return "the baseline itself"
        if self.tie:
            return f"a tie with the baseline ({self.ratio:.2f}×, head to head)"
        return f"{self.ratio:.2f}× the baseline" + (", head to head" if self.head_to_head else "")


def _is_lead_in(step_name: str) -> bool:
    made_by = pass_class(step_name)
    return bool(made_by and made_by.lead_in)
