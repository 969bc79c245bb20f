"""Unstructured magnitude pruning: zero the smallest weights, for a smaller compressed file."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware.errors import UserError
from passes.base import Outcome, Pass, PassContext, PassSkipped
from passes.prune_common import editable_copy, example_args, save_program

SCOPES = ("global", "layer")


@dataclass(frozen=True)
class PruneMagnitude(Pass):
    """Zero the `sparsity` fraction of Conv and Linear weights with the smallest magnitude,
    ranked over all those layers together (`scope` "global") or within each one ("layer").

    Shapes stay the same, so dense kernels do as much work as before: the gain is a file
    that compresses better, alone or with quantization, not a faster model.
    """

    name = "prune_magnitude"
    prunes = True
    libraries = ("torch",)
    consumes = "torch"
    produces = "torch"
    sparsity: float = 0.5
    scope: str = "global"

    def __post_init__(self) -> None:
        if not 0 < self.sparsity < 1:
            raise UserError(f"prune_magnitude sparsity {self.sparsity}: use a fraction in (0, 1)")
        if self.scope not in SCOPES:
            raise UserError(f"prune_magnitude scope '{self.scope}': use one of {', '.join(SCOPES)}")

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        import torch
        from torch.nn.utils import prune

        model = editable_copy(ctx.torch_model)
        layers = [
            (m, "weight")
            for m in model.modules()
            if isinstance(m, (torch.nn.modules.conv._ConvNd, torch.nn.Linear))
        ]
        if not layers:
            raise PassSkipped("nothing to prune: the model has no Conv or Linear layer")
        if self.scope == "global":
            prune.global_unstructured(
                layers, pruning_method=prune.L1Unstructured, amount=self.sparsity
            )
        else:
            for module, attr in layers:
                prune.l1_unstructured(module, attr, amount=self.sparsity)
        for module, attr in layers:
            prune.remove(module, attr)
        out = save_program(model, example_args(ctx), ctx, out_dir)
        achieved = _zero_fraction([m.weight for m, _ in layers])
        data = out.read_bytes()
        dense_mb = len(data) / 2**20
        compressed_mb = len(zlib.compress(data)) / 2**20
        note = (
            f"zeroed {achieved:.1%} of the Conv/Linear weights ({self.scope} magnitude); "
            f"the file is {dense_mb:.3f} MB, {compressed_mb:.3f} MB compressed, but dense "
            "kernels still multiply the zeros, so it runs no faster"
        )
        metrics = {"sparsity": achieved, "dense_mb": dense_mb, "compressed_mb": compressed_mb}
        return Outcome(out, changed=True, note=note, metrics=metrics)


def _zero_fraction(weights: list[Any]) -> float:
    """Fraction of zero elements over all `weights`."""
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)
