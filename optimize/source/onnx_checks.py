"""Whether ONNX Runtime can load a user's ONNX file, and if not, why in one line and what to do.

The file is opened in a child process: a damaged protobuf can crash a native loader, and
that must end the run with a message, not take the tool down with it.
"""

from __future__ import annotations

import re
from pathlib import Path

from optimize.errors import UserError
from optimize.isolation import IsolatedRunError, run_warm

# Loading a graph of a few GB takes a while; a loader past this is stuck, not slow.
LOAD_TIMEOUT_S = 300.0
# ONNX Runtime runs models of opset 7 and newer; older ones lack kernels.
OLDEST_OPSET = 7
NEWEST_OPSET_TO_SUGGEST = 17
# Operator domains ONNX Runtime's CPU build has kernels for.
RUNTIME_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc"}


def check_onnx_loads(path: Path) -> None:
    """Refuse an ONNX file that ONNX Runtime cannot load, with one line naming the problem
    (a custom domain, a malformed graph, an old opset, a newer IR, external data outside
    the model's folder) and what to do about it."""
    try:
        run_warm(onnx_problem, str(path), LOAD_TIMEOUT_S)
    except IsolatedRunError as exc:
        if exc.user_error:
            raise UserError(str(exc)) from None
        if exc.transient:
            raise UserError(
                f"ONNX Runtime could not load {path.name} ({exc}): the file is likely damaged; "
                "export the model again"
            ) from None
        raise


def onnx_problem(path_text: str) -> None:
    """Raise UserError with what stops ONNX Runtime loading the file, if anything does."""
    import onnx

    path = Path(path_text)
    model = onnx.load(path_text, load_external_data=False)
    if model.ir_version > onnx.IR_VERSION:
        raise UserError(
            f"{path.name} has IR version {model.ir_version}, newer than the installed onnx "
            f"{onnx.__version__} reads (up to {onnx.IR_VERSION}): upgrade onnx and "
            "onnxruntime, or export the model with an older onnx"
        )
    _external_data_must_stay_beside(path, model)
    failure = _runtime_failure(path_text)
    if failure is None:
        return
    raise UserError(_explained(path, model, failure))


def _external_data_must_stay_beside(path: Path, model) -> None:
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    folder = path.parent.resolve()
    for tensor in _get_all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        if not location:
            raise UserError(
                f"{path.name}: tensor '{tensor.name}' is stored outside the file but names no "
                "data file; save the model again with onnx.save"
            )
        if Path(location).is_absolute() or not (folder / location).resolve().is_relative_to(folder):
            raise UserError(
                f"{path.name}: tensor '{tensor.name}' keeps its data at '{location}', outside the "
                f"model's folder {folder}; move the data file next to the model and save the "
                "model again with a relative location (onnx.save(..., location=NAME))"
            )


def _runtime_failure(path_text: str) -> str | None:
    """ONNX Runtime's reason for refusing the file, or None when it loads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        ort.InferenceSession(path_text, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime raises its own types for every load failure
        return _runtime_message(str(exc))
    return None


def _runtime_message(text: str) -> str:
    """ONNX Runtime's message without its error code and C++ source location."""
    text = " ".join(text.split())
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"\S+\.(cc|h):\d+ \S+\(.*?\)\s*", "", text)
    return text[:300]


def _explained(path: Path, model, failure: str) -> str:
    """The one line for a file ONNX Runtime refused: the cause found in the file when one
    is, ONNX Runtime's own words otherwise."""
    import onnx

    opset = _default_opset(model)
    if opset is not None and opset < OLDEST_OPSET:
        return (
            f"{path.name} uses opset {opset}, older than ONNX Runtime has kernels for "
            f"({OLDEST_OPSET} and newer): convert it with onnx.version_converter."
            f"convert_version(model, {NEWEST_OPSET_TO_SUGGEST}) and save it again"
        )
    custom = _custom_ops(model)
    if custom:
        return (
            f"{path.name} uses operators ONNX Runtime has no kernels for ({', '.join(custom)}); "
            "this tool loads no custom-op libraries: export the model with standard ONNX "
            "operators"
        )
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return (
            f"{path.name} is not a valid ONNX graph ({detail[:200]}); export the model again "
            "or fix the graph"
        )
    return f"ONNX Runtime cannot load {path.name}: {failure}"


def _default_opset(model) -> int | None:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return None


def _custom_ops(model) -> list[str]:
    """'domain:Op' for each operator from a domain ONNX Runtime does not know and the model
    does not define as a function, in every subgraph."""
    defined = {(f.domain, f.name) for f in model.functions}
    found: set[str] = set()

    def visit(graph) -> None:
        for node in graph.node:
            if node.domain not in RUNTIME_DOMAINS and (node.domain, node.op_type) not in defined:
                found.add(f"{node.domain}:{node.op_type}")
            for attribute in node.attribute:
                for sub in [attribute.g, *attribute.graphs]:
                    visit(sub)

    visit(model.graph)
    for function in model.functions:
        visit(function)
    return sorted(found)
