"""The pick as a Triton model repository: serving/triton/<model>/config.pbtxt and the
artifact in version folder 1, with the backend and settings the pick was measured under."""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware.model_files import external_data_files
from optimize.build.variant import RuntimeRow
from optimize.report.results import Results
from optimize.serve.pick_json import pick_settings, serving_signature
from optimize.store import copy_atomic, write_text_atomic

REPOSITORY = Path("serving") / "triton"
VERSION = "1"
# Triton's data types by the numpy dtype names the signature uses.
TRITON_TYPES = {
    "float32": "TYPE_FP32",
    "float16": "TYPE_FP16",
    "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16",
    "int64": "TYPE_INT64",
    "int32": "TYPE_INT32",
    "int8": "TYPE_INT8",
    "uint8": "TYPE_UINT8",
    "bool": "TYPE_BOOL",
}
# Triton's ONNX Runtime backend levels for the session levels this tool sweeps; "all" is
# its default and needs no line.
ORT_GRAPH_LEVELS = {"disabled": 2, "basic": -1, "extended": 1}


@dataclass(frozen=True)
class TritonModel:
    """What Triton serves: its backend, the artifact files under their names in the version
    folder, the backend's parameters, and a note on how it relates to the pick."""

    backend: str
    files: dict[str, Path]
    parameters: dict[str, str]
    graph_level: int | None = None
    tensorrt_precision: str | None = None
    note: str = ""


def model_name(results: Results) -> str:
    """The model's name in the repository: the source file's stem, in the characters
    Triton and object stores accept."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", results.source_path.stem) or "model"


def write_triton_repository(results: Results) -> list[Path]:
    """Write the repository for the pick under <out>/serving/triton; return its files."""
    name = model_name(results)
    folder = results.out_dir / REPOSITORY / name
    served = _served(results)
    version = folder / VERSION
    remove_stale_repository(results.out_dir, keep=folder / VERSION, files=set(served.files))
    written = []
    for target_name, source in served.files.items():
        copy_atomic(source, version / target_name)
        written.append(version / target_name)
    inputs, outputs = serving_signature(results)
    config = folder / "config.pbtxt"
    text = render_config(name, served, inputs, outputs, _batch(results), results.target)
    write_text_atomic(config, text)
    return [*written, config]


def remove_stale_repository(
    out_dir: Path, keep: Path | None = None, files: set[str] = frozenset()
) -> None:
    """Remove what an earlier run wrote under serving/triton that this one does not: other
    models' folders, other artifact files; everything when `keep` is None (no pick)."""
    root = out_dir / REPOSITORY
    if not root.is_dir():
        return
    for model in root.iterdir():
        if keep is not None and model == keep.parent:
            continue
        if model.is_dir():
            shutil.rmtree(model)
        else:
            model.unlink()
    if keep is not None and keep.is_dir():
        for stale in (f for f in keep.iterdir() if f.name not in files):
            stale.unlink()


def _served(results: Results) -> TritonModel:
    """The backend and files for the pick's runtime: ONNX Runtime for an ONNX variant,
    OpenVINO IR for an OpenVINO row, TorchScript for an eager PyTorch row on a TorchScript
    source; other PyTorch rows are served as the best ONNX variant, and say so."""
    pick, settings = results.pick, pick_settings(results)
    if isinstance(pick, RuntimeRow) and pick.runtime == "openvino":
        folder = results.out_dir / "openvino"
        parameters = {
            "INFERENCE_NUM_THREADS": str(settings.get("threads", 0)),
            "PERFORMANCE_HINT": str(settings.get("hint", "LATENCY")),
            "NUM_STREAMS": str(settings.get("streams", 1)),
        }
        if settings.get("precision") == "bf16":
            parameters["HINT_BF16"] = "YES"
        files = {"model.xml": folder / "model.xml", "model.bin": folder / "model.bin"}
        return TritonModel("openvino", files, parameters)
    if isinstance(pick, RuntimeRow) and pick.runtime == "torch":
        plain = settings.get("mode") == "eager" and settings.get("autocast") == "float32"
        if results.source_form == "torchscript" and plain:
            threads = str(settings.get("threads", 1))
            parameters = {"INTRA_OP_THREAD_COUNT": threads, "INFERENCE_MODE": "true"}
            return TritonModel("pytorch", {"model.pt": results.source_path}, parameters)
        note = (
            f"The pick, {pick.label}, runs in Python; Triton's PyTorch backend takes "
            "TorchScript run eagerly, so this serves the best ONNX variant, "
            f"{results.pick_onnx.label}."
        )
        return _onnx_model(results, note)
    return _onnx_model(results)


def _onnx_model(results: Results, note: str = "") -> TritonModel:
    variant = results.pick if not isinstance(results.pick, RuntimeRow) else results.pick_onnx
    settings = variant.measurements.settings
    files = {"model.onnx": variant.path}
    # The model names its weight file; it must sit beside model.onnx under that name.
    files |= {data.name: data for data in external_data_files(variant.path)}
    parameters = {
        "intra_op_thread_count": str(settings.get("intra_op_threads", 0)),
        "inter_op_thread_count": str(settings.get("inter_op_threads", 1)),
        "execution_mode": "1" if settings.get("parallel") else "0",
    }
    providers = variant.measurements.providers
    precision = None
    if "TensorrtExecutionProvider" in providers:
        precision = "FP16" if any(s.name == "fp16" for s in variant.steps) else "FP32"
    level = ORT_GRAPH_LEVELS.get(str(settings.get("graph_level", "all")))
    return TritonModel("onnxruntime", files, parameters, level, precision, note)


def _batch(results: Results) -> int:
    """The largest batch the pick was measured at: what the server may batch up to."""
    return max(results.pick.measurements.throughput_batch or 1, 1)


def render_config(
    name: str,
    served: TritonModel,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    batch: int,
    target: str,
) -> str:
    """config.pbtxt text: batched along the first dim when every tensor's first dim is
    dynamic, with dynamic batching on; one instance on the target's device."""
    batched = all(t["dims"] and isinstance(t["dims"][0], str) for t in [*inputs, *outputs])
    lines = [f"# {line}" for line in textwrap.wrap(served.note, 88)]
    lines += [f'name: "{name}"', f'backend: "{served.backend}"']
    lines.append(f"max_batch_size: {batch if batched else 0}")
    for key, tensors in (("input", inputs), ("output", outputs)):
        for tensor in tensors:
            dims = tensor["dims"][1:] if batched else tensor["dims"]
            shown = ", ".join(str(d) if isinstance(d, int) else "-1" for d in dims)
            lines += [
                f"{key} {{",
                f'  name: "{tensor["name"]}"',
                f"  data_type: {TRITON_TYPES[tensor['dtype']]}",
                f"  dims: [ {shown} ]",
                "}",
            ]
    if batched:
        lines.append("dynamic_batching { }")
    if target.startswith("gpu"):
        device = target.partition(":")[2] or "0"
        lines.append(f"instance_group [ {{ count: 1, kind: KIND_GPU, gpus: [ {device} ] }} ]")
    else:
        lines.append("instance_group [ { count: 1, kind: KIND_CPU } ]")
    if served.graph_level is not None or served.tensorrt_precision:
        lines.append("optimization {")
        if served.graph_level is not None:
            lines.append(f"  graph {{ level: {served.graph_level} }}")
        if served.tensorrt_precision:
            lines += [
                "  execution_accelerators { gpu_execution_accelerator: [ {",
                '    name: "tensorrt"',
                f'    parameters {{ key: "precision_mode" value: "{served.tensorrt_precision}" }}',
                "  } ] }",
            ]
        lines.append("}")
    for key, value in served.parameters.items():
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
    return "\n".join(lines) + "\n"
