"""PyTorch -> ONNX export, with a parity check of the exported file against PyTorch."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hardware.errors import UserError
from hardware.session import open_session, run_session
from hardware.targets import TargetUnavailableError
from passes.base import DTYPES, Outcome, Pass, PassContext, PassError, TensorSpec
from passes.onnx_files import EXTERNAL_DATA_THRESHOLD_BYTES
from passes.torch_run import dynamic_batch_program, run_torch

EXPORTERS = ("auto", "dynamo", "torchscript")
# Rows of sample inputs the parity check runs: enough to catch a wrong kernel or a lost
# branch, which any row shows; the export is judged over all the evaluation data when it is
# screened. On all-MiniLM-L6-v2 at sequence 128, 64 rows cost 3.0 s, 16 rows 0.7 s.
PARITY_ROWS = 16

_ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")
_ATEN_OP = re.compile(r"aten(?:::|\.)(\w+)")
_CAUSE = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>: (.+)")
_USER_CODE = re.compile(
    r"The following call raised this error:\s*\n\s*File \"([^\"]+)\", line (\d+), in \w+\n\s*(.+)"
)


@dataclass(frozen=True)
class ExportToOnnx(Pass):
    """Export the loaded PyTorch model to ONNX and check its outputs match PyTorch.

    `exporter` "auto" uses the torch.export-based (dynamo) exporter for modules and
    ExportedPrograms, and the TorchScript exporter for ScriptModules, which torch.export
    cannot trace. With `dynamic_batch`, inputs whose first dim is symbolic keep it dynamic.
    Parity holds when every output element is within `parity_atol + parity_rtol * |torch|`.
    """

    name = "export"
    lead_in = True
    libraries = ("torch", "onnx", "onnxscript")
    consumes = "torch"
    produces = "onnx"
    opset: int = 18
    exporter: str = "auto"
    dynamic_batch: bool = True
    parity_atol: float = 1e-4
    parity_rtol: float = 1e-3
    # The dynamo exporter records each node's Python stack: a quarter of a small model's
    # file, of use only to whoever debugs the export.
    keep_stack_traces: bool = False

    def __post_init__(self) -> None:
        if self.exporter not in EXPORTERS:
            raise UserError(f"export exporter '{self.exporter}': use one of {', '.join(EXPORTERS)}")

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        import torch

        model = ctx.torch_model
        if model is None:
            raise PassError(f"export needs the loaded PyTorch model of {src}, and none was given")
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / "model.onnx"
        exporter = self._exporter_for(model)
        dynamic = {
            s.name: s.dims[0] for s in ctx.inputs if self.dynamic_batch and s.has_symbolic_batch
        }
        feeds = _parity_feeds(ctx)
        external = _weights_bytes(model) > EXTERNAL_DATA_THRESHOLD_BYTES
        with _quiet():
            if isinstance(model, torch.export.ExportedProgram) and dynamic:
                model = _with_dynamic_batch(model, [s for s in ctx.inputs if s.name in dynamic])
            try:
                if exporter == "dynamo":
                    self._export_dynamo(model, feeds, ctx.inputs, dynamic, out, external)
                else:
                    self._export_torchscript(model, feeds, ctx.inputs, dynamic, out)
            except Exception as exc:  # exporters raise many unrelated types; explain each one
                raise PassError(self._explain_failure(exc, exporter)) from exc
        if not (self.keep_stack_traces or external):
            _drop_node_metadata(out)

        note, metrics = self._check_parity(out, model, feeds, ctx)
        if metrics["parity_ok"]:
            later = sorted({d for s in ctx.inputs for d in _later_symbolic_axes(s).values()})
            batch = " and ".join(["dynamic batch", *later]) if dynamic else "fixed shapes"
            note = f"{exporter} exporter, opset {self.opset}, {batch}; {note}"
        else:
            note = f"{note} ({exporter} exporter, opset {self.opset})"
        return Outcome(out, changed=True, note=note, metrics=metrics)

    def _check_parity(
        self, out: Path, model: Any, feeds: dict[str, np.ndarray], ctx: PassContext
    ) -> tuple[str, dict[str, float]]:
        """Run PyTorch and ONNX Runtime on the same inputs; a note and the parity metrics."""
        expected = run_torch(model, feeds, ctx.inputs)
        try:
            actual = run_session(open_session(out, ctx.target), feeds)
        except TargetUnavailableError:
            raise
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise PassError(
                f"ONNX Runtime cannot run the exported model: {_first_line(str(exc))}; "
                f"try an opset other than {self.opset} or the other exporter"
            ) from exc
        parity = _parity(expected, actual, self.parity_atol, self.parity_rtol)
        metrics = {
            "parity_max_abs_error": parity.max_abs,
            "parity_max_rel_error": parity.max_rel,
            "parity_ok": 1.0 if parity.ok else 0.0,
        }
        rows = len(next(iter(feeds.values()))) if feeds else 0
        if parity.ok:
            return f"parity max abs error {parity.max_abs:.2e} over {rows} rows", metrics
        problem = f"; {parity.problem}" if parity.problem else ""
        note = (
            f"parity check FAILED: max abs error {parity.max_abs:.3g} > tolerance "
            f"(atol {self.parity_atol}, rtol {self.parity_rtol}) over {rows} rows{problem}: "
            "the ONNX model does not compute what PyTorch does"
        )
        return note, metrics

    def _exporter_for(self, model: Any) -> str:
        import torch

        if self.exporter != "auto":
            return self.exporter
        return "torchscript" if isinstance(model, torch.jit.ScriptModule) else "dynamo"

    def _export_dynamo(
        self,
        model: Any,
        feeds: dict[str, np.ndarray],
        specs: list[TensorSpec],
        dynamic: dict[str, str],
        out: Path,
        external: bool,
    ) -> None:
        import torch

        options = dict(opset_version=self.opset, dynamo=True, verbose=False, external_data=external)
        if isinstance(model, torch.export.ExportedProgram):
            torch.onnx.export(model, (), str(out), **options)
            return
        torch.onnx.export(
            model,
            _trace_args(feeds, specs, dynamic),
            str(out),
            input_names=[s.name for s in specs],
            dynamic_shapes=_dynamic_shapes(specs, dynamic),
            **options,
        )

    def _export_torchscript(
        self,
        model: Any,
        feeds: dict[str, np.ndarray],
        specs: list[TensorSpec],
        dynamic: dict[str, str],
        out: Path,
    ) -> None:
        import torch

        if isinstance(model, torch.export.ExportedProgram):
            model = model.module()
        torch.onnx.export(
            model,
            _trace_args(feeds, specs, dynamic),
            str(out),
            input_names=[s.name for s in specs],
            dynamic_axes={
                s.name: {
                    **_later_symbolic_axes(s),
                    **({0: dynamic[s.name]} if s.name in dynamic else {}),
                }
                for s in specs
                if s.name in dynamic or _later_symbolic_axes(s)
            },
            opset_version=self.opset,
            dynamo=False,
            verbose=False,
        )

    def _explain_failure(self, exc: BaseException, exporter: str) -> str:
        """One line naming the failing operator or construct, and what to try instead."""
        text = _ANSI_CODES.sub("", str(exc))
        cause = _first_line(text)
        summary = text.split("## Exception summary", 1)
        if len(summary) == 2:
            # The dynamo exporter lists the chain of causes, innermost first.
            found = _CAUSE.search(summary[1])
            if found:
                cause = f"{found[1]}: {found[2]}"
        where = ""
        if call := _USER_CODE.search(text):
            where = f" at {Path(call[1]).name}:{call[2]} `{call[3].strip()}`"
        op = _ATEN_OP.search(text)
        operator = f" at operator aten::{op[1]}" if op else ""
        other = "torchscript" if exporter == "dynamo" else "dynamo"
        return (
            f"{exporter} export failed{operator}{where}: {_shorten(cause)}; try --exporter {other} "
            f"or another --opset (now {self.opset}) ([export] in the recipe), or export to "
            ".onnx yourself and pass that file"
        )


def _parity_feeds(ctx: PassContext) -> dict[str, np.ndarray]:
    """The sample inputs (random ones of batch 2 when there are none), cast to the spec's
    dtypes and cut to the model's fixed batch when it has one, or to its declared bound."""
    names = [s.name for s in ctx.inputs]
    if ctx.sample_inputs and all(n in ctx.sample_inputs for n in names):
        feeds = {s.name: np.asarray(ctx.sample_inputs[s.name]) for s in ctx.inputs}
    else:
        feeds = _random_inputs(ctx.inputs, batch=2)
    fixed = [s.dims[0] for s in ctx.inputs if s.dims and isinstance(s.dims[0], int)]
    cast = {s.name: feeds[s.name].astype(DTYPES[s.dtype], copy=False) for s in ctx.inputs}
    if fixed:
        return {name: _first_rows(array, fixed[0]) for name, array in cast.items()}
    rows = min(PARITY_ROWS, ctx.max_batch or PARITY_ROWS)
    return {name: array[:rows] if array.ndim else array for name, array in cast.items()}


def _random_inputs(specs: list[TensorSpec], batch: int) -> dict[str, np.ndarray]:
    # Small non-negative integers are valid indices into any embedding table.
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in specs:
        shape = spec.concrete_shape(batch)
        if np.issubdtype(DTYPES[spec.dtype], np.floating):
            feeds[spec.name] = rng.standard_normal(shape)
        else:
            feeds[spec.name] = rng.integers(0, 2, shape)
    return feeds


def _first_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """Exactly `rows` rows, repeating the array when it has fewer."""
    if array.ndim == 0:
        return array
    if len(array) < rows:
        array = np.concatenate([array] * -(-rows // len(array)))
    return array[:rows]


def _trace_args(feeds: dict[str, np.ndarray], specs: list[TensorSpec], dynamic: dict[str, str]):
    """Example inputs for tracing: two rows when the batch is dynamic, because torch.export
    treats a size of 1 as a constant."""
    import torch

    args = []
    for spec in specs:
        array = _first_rows(feeds[spec.name], 2) if spec.name in dynamic else feeds[spec.name]
        args.append(torch.from_numpy(np.ascontiguousarray(array)))
    return tuple(args)


def _later_symbolic_axes(spec: TensorSpec) -> dict[int, str]:
    """The symbolic dims past the batch (a sequence), by axis."""
    return {axis: dim for axis, dim in enumerate(spec.dims) if axis > 0 and isinstance(dim, str)}


def _dynamic_shapes(specs: list[TensorSpec], dynamic: dict[str, str]) -> tuple[Any, ...]:
    """torch.export dynamic_shapes, in forward() order; inputs sharing a batch symbol share a
    Dim. A symbolic dim past the batch (a sequence) is left to torch.export to bound
    (Dim.AUTO): a model's positions cap it, which the spec does not know."""
    import torch

    dims = {symbol: torch.export.Dim(symbol) for symbol in set(dynamic.values())}
    shapes = []
    for spec in specs:
        axes = {axis: torch.export.Dim.AUTO for axis in _later_symbolic_axes(spec)}
        if spec.name in dynamic:
            axes[0] = dims[dynamic[spec.name]]
        shapes.append(axes or None)
    return tuple(shapes)


def _with_dynamic_batch(program, specs: list[TensorSpec]):
    try:
        return dynamic_batch_program(program, specs)
    except Exception as exc:  # torch.export raises many types; all mean the same here
        raise PassError(
            "the ExportedProgram was saved with a fixed batch that its graph depends on "
            f"({_first_line(str(exc))}); save it again with dynamic_shapes "
            "(torch.export.Dim('batch') on dim 0), or give --input with that fixed batch"
        ) from exc


def _weights_bytes(model: Any) -> int:
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        tensors = [*model.state_dict.values(), *model.constants.values()]
    else:
        tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


@dataclass(frozen=True)
class _Parity:
    max_abs: float
    max_rel: float
    ok: bool
    problem: str = ""


def _parity(
    expected: list[np.ndarray], actual: list[np.ndarray], atol: float, rtol: float
) -> _Parity:
    """Largest absolute and relative differences over all outputs. Relative error counts
    only elements whose reference exceeds atol: near zero it measures noise, not error."""
    if len(expected) != len(actual):
        problem = f"PyTorch gives {len(expected)} outputs, ONNX {len(actual)}"
        return _Parity(float("inf"), float("inf"), False, problem)
    max_abs = max_rel = 0.0
    ok = True
    for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
        if want.shape != got.shape:
            problem = f"output {index} has shape {got.shape} in ONNX, {want.shape} in PyTorch"
            return _Parity(float("inf"), float("inf"), False, problem)
        want, got = want.astype(np.float64), got.astype(np.float64)
        diff = np.abs(got - want)
        diff[np.isnan(want) & np.isnan(got)] = 0.0
        diff[np.isnan(diff)] = np.inf
        scale = np.abs(want)
        significant = scale > atol
        max_abs = max(max_abs, float(diff.max(initial=0.0)))
        max_rel = max(max_rel, float((diff[significant] / scale[significant]).max(initial=0.0)))
        ok = ok and bool(np.all(diff <= atol + rtol * np.nan_to_num(scale)))
    return _Parity(max_abs, max_rel, ok)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress prints, warnings and log lines, including what their
    C++ side writes straight to the process's stdout and stderr; errors still raise."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            _silenced_fds(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _silenced_fds() -> Iterator[None]:
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _drop_node_metadata(path: Path) -> None:
    """Remove the per-node metadata (source stack traces) from a self-contained ONNX file."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path))
