"""One cell of the compatibility suite: an architecture saved in one form, run through
`optimize run`, and the saved best.onnx checked against the original on fresh inputs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from zoo import ARCHITECTURES, reference_outputs, save

from optimize.api import run
from optimize.config.recipe import Recipe
from optimize.errors import first_line

# The pick's outputs against the original's, on inputs neither the export nor the run saw.
MIN_COSINE = 0.999


@dataclass
class CellResult:
    """What happened to one architecture in one save form."""

    architecture: str
    form: str
    outcome: str  # "ok", "save failed" (the saver itself), "run failed", "mismatch"
    pick: str = ""
    speedup: str = ""
    cosine: float | None = None
    wall_s: float = 0.0
    reason: str = ""


def run_cell(architecture: str, form: str, size: str, scratch: Path, **recipe: Any) -> CellResult:
    """Save `architecture` in `form`, run the tool on it with `recipe` settings, and check
    the best ONNX variant against the original model at another batch size."""
    arch = ARCHITECTURES[architecture]
    generator = torch.Generator().manual_seed(0)
    model = arch.build(size)
    example = arch.inputs(size, 2, generator)
    start = time.perf_counter()
    try:
        saved = save(arch, form, model, example, scratch / "saved")
    except Exception as exc:  # exporters and savers raise many types
        return CellResult(architecture, form, "save failed", reason=first_line(exc))
    try:
        results = run(
            Recipe(
                model=saved.path,
                out=scratch / "out",
                trust_pickle=saved.trust_pickle,
                inputs=list(saved.inputs),
                **recipe,
            )
        )
    except Exception as exc:  # the tool's own failure is what this cell reports
        wall = time.perf_counter() - start
        return CellResult(architecture, form, "run failed", wall_s=wall, reason=first_line(exc))
    wall = time.perf_counter() - start
    if results.pick is None:
        reason = "; ".join(v.reason for v in results.variants if v.reason)[:300]
        return CellResult(architecture, form, "run failed", wall_s=wall, reason=reason or "no pick")
    speedup = results.speedup.describe() if results.speedup else ""
    cosine = _best_onnx_cosine(results.out_dir / "best.onnx", model, arch, size)
    outcome = "ok" if cosine >= MIN_COSINE else "mismatch"
    return CellResult(architecture, form, outcome, results.pick.label, speedup, cosine, wall)


def _best_onnx_cosine(path: Path, model, arch, size: str) -> float:
    """The smallest cosine, over outputs, between best.onnx and the original on three fresh
    rows (a batch neither the export nor the run used)."""
    import onnxruntime as ort

    fresh = arch.inputs(size, 3, torch.Generator().manual_seed(7))
    expected = reference_outputs(model, fresh)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = {name: tensor.numpy() for name, tensor in zip(names, fresh.values(), strict=True)}
    actual = session.run(None, feeds)
    return min(_cosine(a, e) for a, e in zip(actual, expected, strict=False))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norms) if norms else float(np.array_equal(a, b))
