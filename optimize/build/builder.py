"""Building variants: check a chain, run its passes, record lineage, reuse finished ones."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from traceback import format_exc
from typing import TYPE_CHECKING

from hardware.detect import distribution_versions
from hardware.session import load_problem
from optimize.build.variant import Status, Step, Variant
from optimize.config.chains import Chain
from optimize.errors import UserError
from optimize.execution import Executor, LocalExecutor, Unit
from optimize.isolation import IsolatedRunError, ScriptRerunError
from optimize.store import publish_dir, staging_dir, write_json_atomic
from passes.base import (
    ARTIFACT_NAMES,
    ModelKind,
    Outcome,
    Pass,
    PassContext,
    PassError,
    PassSkipped,
)
from passes.export import ExportToOnnx

if TYPE_CHECKING:
    from optimize.source.load import Source

VARIANT_FILE = "variant.json"


def variant_id(parent_id: str, pass_: Pass) -> str:
    """Content address of a variant: its parent's id plus the pass, its options and the
    versions of the libraries it runs, so an upgrade rebuilds what it would change."""
    versions = distribution_versions(pass_.libraries)
    key = json.dumps([parent_id, pass_.name, pass_.params(), versions], sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def check_chain(start: ModelKind, passes: list[Pass]) -> None:
    """Raise UserError when a pass would receive the wrong kind of model."""
    kind = start
    for index, pass_ in enumerate(passes):
        if pass_.consumes != kind:
            after = " → ".join(p.name for p in passes[:index]) or "the source"
            raise UserError(
                f"{pass_.name} needs a {pass_.consumes} model but follows {after}, "
                f"which gives {kind}"
            )
        kind = pass_.produces


def _load_cached(folder: Path, kind: ModelKind) -> Variant | None:
    record, model = folder / VARIANT_FILE, folder / ARTIFACT_NAMES[kind]
    if not (record.is_file() and model.exists()):
        return None
    data = json.loads(record.read_text())
    steps = [Step(**s) for s in data["steps"]]
    return Variant(data["id"], data["parent"], steps, model, Status.BUILT, cached=True)


class VariantBuilder:
    """Builds variants of one source under `variants_dir`, one folder per variant id."""

    def __init__(
        self,
        source: Source,
        ctx: PassContext,
        variants_dir: Path,
        root_id: str,
        on_step: Callable[[str], None] = lambda label: None,
        timeout_s: float = 1800.0,
        preprocess: Pass | None = None,
        torch_ctx: PassContext | None = None,
        export: Pass = ExportToOnnx(),
        executor: Executor | None = None,
    ) -> None:
        """`preprocess` (a pass) goes in front of every variant, right after `export` (for
        a PyTorch source); then `ctx` describes the raw inputs it takes and `torch_ctx` the
        model's own inputs, which passes on the PyTorch model (export, pruning) see."""
        self.source = source
        self.export = export
        self.ctx = ctx
        self.preprocess = preprocess
        self.torch_ctx = torch_ctx or ctx
        self.variants_dir = variants_dir
        self.root_id = root_id
        self.on_step = on_step
        self.timeout_s = timeout_s
        self.executor = executor or LocalExecutor()
        self.variants: dict[str, Variant] = {}
        # A killed run can leave a half-built variant: it was never published, so drop it.
        for stale in variants_dir.glob(".*.partial"):
            shutil.rmtree(stale, ignore_errors=True)
        self.made_by: dict[str, tuple[Variant, Pass]] = {}

    def lead_in(self) -> list[Pass]:
        """Passes every chain starts with: export, unless the source is already ONNX, then
        the preprocessing, when the run has one."""
        export = [self.export] if self.source.model_kind == "torch" else []
        return export + ([self.preprocess] if self.preprocess else [])

    def servable(self, variant: Variant) -> bool:
        """Whether the variant is a model a runtime takes (not a PyTorch program) taking
        the run's inputs: past every lead-in pass (export, preprocessing), so it can be
        measured and served."""
        done = {s.name for s in variant.steps}
        return variant.model_kind != "torch" and all(p.name in done for p in self.lead_in())

    def full_chain(self, chain: Chain) -> list[Pass]:
        """The chain's passes with the lead-in placed after those that change the PyTorch
        module (pruning), so they run before export."""
        passes = list(chain.passes)
        torch_count = next((i for i, p in enumerate(passes) if p.consumes != "torch"), len(passes))
        return passes[:torch_count] + self.lead_in() + passes[torch_count:]

    def original(self) -> Variant:
        """The source itself as a variant, when it is ONNX or a causal LM's folder (it is
        measured as the baseline unless preprocessing goes in front of it: the source alone
        takes other inputs). Every chain starts from this one object, so it is measured
        once."""
        if self.root_id not in self.variants:
            self.variants[self.root_id] = Variant(
                self.root_id, None, [], self.source.artifact, Status.BUILT
            )
        return self.variants[self.root_id]

    def build(
        self, chain: Chain, should_stop: Callable[[Variant], str | None] = lambda v: None
    ) -> list[Variant]:
        """Build every prefix of `chain` (after the lead-in); returns them in order.

        Before each pass after the first, `should_stop(parent)` may give a reason to skip
        the rest of the chain (e.g. its parent is dominated, or time is up)."""
        passes = self.full_chain(chain)
        parent = self.original() if self.source.model_kind != "torch" else None
        built = [parent] if parent and not self.preprocess else []
        if self.source.model_kind == "onnx" and passes and passes[0].consumes == "torch":
            return built + [self._needs_torch(passes)]
        check_chain(self.source.model_kind, passes)
        for pass_ in passes:
            vid = variant_id(parent.id if parent else self.root_id, pass_)
            reason = None
            if parent is not None and vid not in self.variants:
                reason = should_stop(parent)
            if reason:
                unbuilt = pass_.label()
                if parent.unbuilt_step:
                    unbuilt = f"{parent.unbuilt_step} → {unbuilt}"
                variant = Variant(
                    vid, parent.id, list(parent.steps), None, Status.SKIPPED, reason, unbuilt
                )
                self.variants[vid] = variant
            else:
                variant = self._build_step(parent, pass_)
            built.append(variant)
            parent = variant
        return built

    def _needs_torch(self, passes: list[Pass]) -> Variant:
        """A chain that changes the PyTorch module cannot start from an ONNX file."""
        label = " → ".join(p.label() for p in passes)
        vid = variant_id(self.root_id, passes[0])
        reason = (
            f"skipped: {passes[0].name} changes the PyTorch module before export, and an ONNX "
            "file carries none; give the .pt or .pt2 model to prune it"
        )
        variant = Variant(vid, self.root_id, [], None, Status.SKIPPED, reason, label)
        self.variants[vid] = variant
        return variant

    def build_after(self, parent: Variant, pass_: Pass) -> Variant:
        """Build one more step on an existing variant (cached like any other)."""
        check_chain("onnx", [pass_])
        return self._build_step(parent, pass_)

    def _build_step(self, parent: Variant | None, pass_: Pass) -> Variant:
        parent_id = parent.id if parent else self.root_id
        vid = variant_id(parent_id, pass_)
        if vid in self.variants:
            return self.variants[vid]
        steps = list(parent.steps) if parent else []
        label = pass_.label()
        # A parent skipped for changing nothing still has its file to build on.
        if parent is not None and parent.path is None:
            unbuilt = f"{parent.unbuilt_step} → {label}" if parent.unbuilt_step else label
            variant = Variant(
                vid, parent_id, steps, None, Status.SKIPPED, "an earlier step did not run", unbuilt
            )
        elif reason := pass_.unsupported(self.ctx.target):
            variant = Variant(vid, parent_id, steps, None, Status.SKIPPED, reason, label)
        else:
            variant = (
                _load_cached(self.variants_dir / vid, pass_.produces)
                or self._load_outcome(vid, parent_id, steps, label)
                or self._run(vid, parent_id, parent, pass_, steps, label)
            )
        self.variants[vid] = variant
        if parent is not None:
            self.made_by[vid] = (parent, pass_)
        return variant

    def _run(self, vid, parent_id, parent, pass_, steps, label) -> Variant:
        self.on_step(" → ".join([s.label for s in steps] + [label]))
        src = parent.path if parent else self.source.artifact
        staging = staging_dir(self.variants_dir, vid)
        start = time.perf_counter()
        detail, remember = "", True
        try:
            if pass_.consumes != "torch":
                # Native quantizers and optimizers can crash or hang: a child process keeps
                # that to this variant. Export stays here, where the loaded model lives.
                light_ctx = dataclasses.replace(self.ctx, torch_model=None)
                job = (pass_, src, staging, light_ctx)
                unit = Unit(apply_pass, job, self.timeout_s, f"building {label}")
                result = self.executor.build(unit, pass_.tied_to_hardware(self.ctx.target))
            else:
                result = apply_pass((pass_, src, staging, self._torch_ctx(parent)))
        except ScriptRerunError:
            raise
        except Exception as exc:  # a pass is third-party code: its failure fails this variant only
            result = Applied(Status.FAILED, reason=_one_line(exc))
            detail = exc.child_traceback if isinstance(exc, IsolatedRunError) else format_exc()
            remember = not isinstance(exc, IsolatedRunError) or exc.worth_remembering
        if result.outcome is None:
            shutil.rmtree(staging, ignore_errors=True)
            if result.status == Status.SKIPPED:
                self._keep_outcome(vid, Status.SKIPPED, result.reason)
                return Variant(vid, parent_id, steps, None, Status.SKIPPED, result.reason, label)
            chain = " → ".join([s.label for s in steps]) or "the source"
            reason = f"{label} failed after {chain}: {result.reason}"
            failed = Variant(vid, parent_id, steps, None, Status.FAILED, reason, label)
            failed.detail = detail
            if remember:
                self._keep_outcome(vid, Status.FAILED, reason, detail)
            return failed
        outcome = result.outcome
        step = Step(
            pass_.name,
            label,
            pass_.params(),
            outcome.changed,
            round(time.perf_counter() - start, 3),
            outcome.note,
            outcome.metrics,
        )
        all_steps = steps + [step]
        record = {
            "id": vid,
            "parent": parent_id,
            "source": str(self.source.path),
            "steps": [asdict(s) for s in all_steps],
        }
        write_json_atomic(staging / VARIANT_FILE, record)
        final = self.variants_dir / vid
        model_file = ARTIFACT_NAMES[pass_.produces]
        if outcome.path != staging / model_file:
            shutil.rmtree(staging, ignore_errors=True)
            raise PassError(
                f"{pass_.name} must write {model_file} in its folder, not {outcome.path}"
            )
        publish_dir(staging, final)
        return Variant(vid, parent_id, all_steps, final / model_file, Status.BUILT)

    def _outcome_file(self, vid: str) -> Path:
        return self.variants_dir.parent / "cache" / "builds" / f"{vid}.json"

    def _keep_outcome(self, vid: str, status: Status, reason: str, detail: str = "") -> None:
        """Remember a pass that skipped or failed, so a re-run does not try it again (the id
        changes with the model, the chain and the libraries' versions)."""
        path = self._outcome_file(vid)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"status": str(status), "reason": reason, "detail": detail})

    def _load_outcome(self, vid, parent_id, steps, label) -> Variant | None:
        """The skipped or failed variant a previous run left on record, or None."""
        path = self._outcome_file(vid)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        variant = Variant(
            vid, parent_id, steps, None, Status(data["status"]), data["reason"], label
        )
        variant.detail, variant.cached = data.get("detail", ""), True
        return variant

    def _torch_ctx(self, parent: Variant | None) -> PassContext:
        """The context of a pass that reads the PyTorch model: the source's, or the program
        an earlier pass (pruning) saved."""
        if parent is None or parent.model_kind != "torch":
            return dataclasses.replace(self.torch_ctx, torch_model=self.source.model)
        import torch

        return dataclasses.replace(self.torch_ctx, torch_model=torch.export.load(str(parent.path)))


@dataclass(frozen=True)
class Applied:
    """What applying one pass came to: built, with the pass's Outcome; skipped (nothing to
    do) or failed, with the reason."""

    status: Status
    outcome: Outcome | None = None
    reason: str = ""


def apply_pass(job: tuple[Pass, Path, Path, PassContext]) -> Applied:
    """Run one pass: built with its Outcome, or skipped with the reason it had nothing to
    do; raises PassError when the ONNX model it wrote does not load. Importable at module
    level so a child process can run it."""
    pass_, src, out_dir, ctx = job
    try:
        outcome = pass_.apply(src, out_dir, ctx)
    except PassSkipped as exc:
        return Applied(Status.SKIPPED, reason=str(exc))
    # A model ONNX Runtime refuses fails where it was made, not later in its measuring.
    if outcome.path.suffix == ".onnx" and (problem := load_problem(outcome.path, ctx.target)):
        raise PassError(f"the model it wrote does not load in ONNX Runtime: {problem}")
    return Applied(Status.BUILT, outcome)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
