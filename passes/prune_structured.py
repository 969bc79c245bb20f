"""Structured pruning: remove whole channels and neurons, leaving a smaller dense model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware.errors import UserError
from passes.base import Outcome, Pass, PassContext, PassError, PassSkipped
from passes.prune_common import (
    editable_copy,
    example_args,
    first_line,
    quiet_spec_copies,
    save_program,
    shape_hint,
)
from passes.user_code import import_callable

NORMS = {"l1": 1, "l2": 2}
FINETUNE_FORM = (
    "'module:function', where module is a dotted module importable from sys.path or a path "
    "to a .py file, and function takes the pruned torch.nn.Module and returns it trained"
)


@dataclass(frozen=True)
class PruneStructured(Pass):
    """Remove `ratio` of the output channels of each Conv and neurons of each Linear layer,
    those of smallest `norm`, with the layers that depend on them (next layers' inputs,
    BatchNorm, residual adds, concatenations, attention heads) shrunk to match.

    torch-pruning finds the dependent layers; the layers producing the model's outputs keep
    all their channels. `finetune` names a function that trains the pruned model to recover
    accuracy; without it the pruned weights are used as they are.
    """

    name = "prune_structured"
    prunes = True
    libraries = ("torch", "torch-pruning")
    consumes = "torch"
    produces = "torch"
    ratio: float = 0.3
    norm: str = "l1"
    finetune: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.ratio < 1:
            raise UserError(f"prune_structured ratio {self.ratio}: use a fraction in (0, 1)")
        if self.norm not in NORMS:
            raise UserError(f"prune_structured norm '{self.norm}': use one of {', '.join(NORMS)}")

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        tp = _import_torch_pruning()
        finetune = load_finetune(self.finetune) if self.finetune else None
        model = editable_copy(ctx.torch_model)
        args = example_args(ctx)
        with quiet_spec_copies():
            macs_before, params_before = tp.utils.count_ops_and_params(model, args)
        try:
            pruner = tp.pruner.MagnitudePruner(
                model,
                args,
                importance=tp.importance.GroupMagnitudeImportance(p=NORMS[self.norm]),
                pruning_ratio=self.ratio,
                ignored_layers=_fixed_layers(tp, model, args),
            )
            pruner.step()
        except Exception as exc:  # torch-pruning raises untyped errors from tracing and surgery
            raise PassError(
                f"torch-pruning could not prune the model: {type(exc).__name__}: "
                f"{first_line(str(exc))}; {shape_hint(ctx.torch_model)}"
            ) from exc
        try:
            with quiet_spec_copies():
                macs_after, params_after = tp.utils.count_ops_and_params(model, args)
        except RuntimeError as exc:
            raise PassError(
                f"the pruned model no longer runs: {first_line(str(exc))}; "
                f"{shape_hint(ctx.torch_model)}"
            ) from exc
        if params_after == params_before:
            raise PassSkipped(
                f"ratio {self.ratio} removes no channel: every prunable layer is too narrow "
                "or feeds a model output"
            )
        if finetune is not None:
            model = _run_finetune(finetune, model, self.finetune)
        out = save_program(model, args, ctx, out_dir)
        recovery = (
            f"then fine-tuned with {self.finetune}"
            if finetune
            else "accuracy was not recovered by fine-tuning"
        )
        note = (
            f"removed {self.ratio:.0%} of each prunable layer's channels, those of least "
            f"{self.norm.upper()} norm: "
            f"parameters {params_before:,.0f} -> {params_after:,.0f}, "
            f"MACs {macs_before:,.0f} -> {macs_after:,.0f}; {recovery}"
        )
        metrics = {
            "params_before": float(params_before),
            "params_after": float(params_after),
            "macs_before": float(macs_before),
            "macs_after": float(macs_after),
        }
        return Outcome(out, changed=True, note=note, metrics=metrics)


def load_finetune(spec: str) -> Callable[[Any], Any]:
    """The fine-tuning function a 'module:function' spec names."""
    try:
        return import_callable(spec, "finetune")
    except ValueError as exc:
        raise PassError(f"{exc}; give {FINETUNE_FORM}") from exc


def _run_finetune(finetune: Callable[[Any], Any], model: Any, spec: str) -> Any:
    import torch

    try:
        trained = finetune(model)
    except Exception as exc:  # user code may raise anything; report it as this pass's failure
        raise PassError(
            f"finetune '{spec}' raised {type(exc).__name__}: {first_line(str(exc))}"
        ) from exc
    if not isinstance(trained, torch.nn.Module):
        raise PassError(
            f"finetune '{spec}' returned {type(trained).__name__}; it must return the "
            "trained torch.nn.Module"
        )
    return trained.eval()


def _fixed_layers(tp: Any, model: Any, args: tuple[Any, ...]) -> list[Any]:
    """The layers whose output channels reach a model output, or meet a model input (a
    skip connection from the input): pruning them would change the model's interface."""
    # Inputs that need a gradient appear in the autograd graph torch-pruning traces.
    args = tuple(a.detach().requires_grad_() if a.is_floating_point() else a for a in args)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=args)
    # Conv and Linear layers take any input width; every other op passes channels through.
    independent = (tp.ops.OPTYPE.CONV, tp.ops.OPTYPE.LINEAR)
    fed = {
        node
        for node in graph.module2node.values()
        if node.type not in independent and _reads_any(node.grad_fn, args)
    }
    layers = []
    for group in graph.get_all_groups():
        # The traced graph ends at the outputs: a node with no consumer produces one.
        if any(
            dep.target in fed
            or (not dep.target.outputs and graph.is_out_channel_pruning_fn(dep.handler))
            for dep, _ in group
        ):
            layers += [
                dep.target.module
                for dep, _ in group
                if graph.is_out_channel_pruning_fn(dep.handler)
                and dep.target.type != tp.ops.OPTYPE.OUTPUT
            ]
    return layers


def _reads_any(grad_fn: Any, tensors: tuple[Any, ...]) -> bool:
    """Whether the op behind `grad_fn` takes one of `tensors` as a direct input."""
    sources = [getattr(f, "variable", None) for f, _ in getattr(grad_fn, "next_functions", ())]
    return any(source is t for source in sources for t in tensors)


def _import_torch_pruning() -> Any:
    try:
        import torch_pruning
    except ImportError as exc:
        raise PassError(
            "structured pruning needs torch-pruning: pip install torch-pruning "
            "(or pip install 'optimize[prune]')"
        ) from exc
    return torch_pruning
