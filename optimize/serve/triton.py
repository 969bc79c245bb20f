"""The pick as a Triton model repository: serving/triton/<model>/config.pbtxt and the
artifact in version folder 1, with the backend and settings the pick was measured under."""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from hardware.model_files import external_data_files
from hardware.runtimes.base import RuntimeName
from optimize.serve.pick_json import ServedPick
from optimize.serve.serving_setup import ServingSetup
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
    "int16": "TYPE_INT16",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "object": "TYPE_STRING",
}


def wire_type(dtype: str) -> str:
    """The Open Inference Protocol's name for a tensor of numpy dtype `dtype` ('FP32');
    strings travel as BYTES."""
    if dtype in ("object", "string"):
        return "BYTES"
    return TRITON_TYPES[dtype].removeprefix("TYPE_")


# Triton's ONNX Runtime backend levels for the session levels this tool sweeps; "all" is
# its default and needs no line.
ORT_GRAPH_LEVELS = {"disabled": 2, "basic": -1, "extended": 1}
# The parameter that sets one instance's threads, per backend.
THREAD_PARAMETER = {
    RuntimeName.ONNXRUNTIME: "intra_op_thread_count",
    RuntimeName.OPENVINO: "INFERENCE_NUM_THREADS",
    "pytorch": "INTRA_OP_THREAD_COUNT",
}


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


def model_name(pick: ServedPick) -> str:
    """The model's name in the repository: the source file's stem, in the characters
    Triton and object stores accept."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(pick.source).stem) or "model"


def write_triton_repository(
    pick: ServedPick, served: TritonModel, setup: ServingSetup | None = None
) -> list[Path]:
    """Write the repository serving the pick as `served` (see served_model) under
    <out>/serving/triton, run as `setup` says (else as measured: one instance, batching
    on where the model batches); return its files."""
    name = model_name(pick)
    folder = pick.out_dir / REPOSITORY / name
    version = folder / VERSION
    remove_stale_repository(pick.out_dir, keep=version, files=set(served.files))
    written = []
    for target_name, source in served.files.items():
        copy_atomic(source, version / target_name)
        written.append(version / target_name)
    config = folder / "config.pbtxt"
    write_text_atomic(config, render_config(name, served, pick, setup))
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


def served_model(pick: ServedPick) -> TritonModel | None:
    """The backend and files for the pick's runtime: ONNX Runtime for an ONNX variant,
    OpenVINO IR for an OpenVINO row, TorchScript for an eager PyTorch row on a TorchScript
    source; other PyTorch rows are served as the best ONNX variant, and say so. None when
    Triton has nothing to run: such a PyTorch row, with no ONNX variant within the limits,
    or a language model (served by its own runtime, as pick.json says)."""
    settings, artifact = pick.settings, pick.out_dir / pick.artifact
    if pick.figures.get("tokens_per_s") is not None:
        # A language model's runtime takes text and keeps a KV cache across calls; Triton's
        # backends here take tensors in one call.
        return None
    if pick.runtime == RuntimeName.OPENVINO:
        parameters = {
            THREAD_PARAMETER[RuntimeName.OPENVINO]: str(settings.get("threads", 0)),
            "PERFORMANCE_HINT": str(settings.get("hint", "LATENCY")),
            "NUM_STREAMS": str(settings.get("streams", 1)),
        }
        if settings.get("precision") == "bf16":
            parameters["HINT_BF16"] = "YES"
        files = {"model.xml": artifact, "model.bin": artifact.with_suffix(".bin")}
        return TritonModel("openvino", files, parameters)
    if pick.runtime == RuntimeName.TORCH:
        plain = settings.get("mode") == "eager" and settings.get("autocast") == "float32"
        if pick.source_form == "torchscript" and plain:
            threads = str(settings.get("threads", 1))
            parameters = {THREAD_PARAMETER["pytorch"]: threads, "INFERENCE_MODE": "true"}
            return TritonModel("pytorch", {"model.pt": artifact}, parameters)
        if pick.best_onnx is None:
            return None
        note = (
            f"The pick, {pick.label}, runs in Python; Triton's PyTorch backend takes "
            "TorchScript run eagerly, so this serves the best ONNX variant, "
            f"{pick.best_onnx_label}."
        )
        return _onnx_model(pick, pick.out_dir / pick.best_onnx, {}, note)
    return _onnx_model(pick, artifact, settings)


def _onnx_model(pick: ServedPick, model: Path, settings: dict, note: str = "") -> TritonModel:
    files = {"model.onnx": model}
    # The model names its weight file; it must sit beside model.onnx under that name.
    files |= {data.name: data for data in external_data_files(model)}
    parameters = {
        THREAD_PARAMETER[RuntimeName.ONNXRUNTIME]: str(settings.get("intra_op_threads", 0)),
        "inter_op_thread_count": str(settings.get("inter_op_threads", 1)),
        "execution_mode": "1" if settings.get("parallel") else "0",
    }
    precision = None
    if "TensorrtExecutionProvider" in pick.providers:
        precision = pick.float_precision.upper()
    level = ORT_GRAPH_LEVELS.get(str(settings.get("graph_level", "all")))
    return TritonModel("onnxruntime", files, parameters, level, precision, note)


def render_config(
    name: str, served: TritonModel, pick: ServedPick, setup: ServingSetup | None
) -> str:
    """config.pbtxt text: batched along the first dim when every tensor's first dim is
    dynamic; instances, threads and batching as `setup` says, else one instance as
    measured with dynamic batching on."""
    batched, batch = pick.batches_on_first_dim, pick.batch
    lines = [f"# {line}" for line in textwrap.wrap(served.note, 88)]
    if setup is not None:
        lines.append(f"# Set by the load sweep (serving/load_sweep.json): {setup.label()}.")
    lines += [f'name: "{name}"', f'backend: "{served.backend}"']
    lines.append(f"max_batch_size: {batch if batched else 0}")
    for key, group in (("input", pick.inputs), ("output", pick.outputs)):
        for tensor in group:
            dims = tensor["dims"][1:] if batched else tensor["dims"]
            shown = ", ".join(str(d) if isinstance(d, int) else "-1" for d in dims)
            lines += [
                f"{key} {{",
                f'  name: "{tensor["name"]}"',
                f"  data_type: {TRITON_TYPES[tensor['dtype']]}",
                f"  dims: [ {shown} ]",
                "}",
            ]
    if batched and (setup is None or setup.batching):
        delay = setup.queue_delay_us if setup else 0
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {delay} }}")
    count = setup.instances if setup else 1
    if pick.target.startswith("gpu"):
        device = pick.target.partition(":")[2] or "0"
        lines.append(f"instance_group [ {{ count: {count}, kind: KIND_GPU, gpus: [ {device} ] }} ]")
    else:
        lines.append(f"instance_group [ {{ count: {count}, kind: KIND_CPU }} ]")
    lines += _optimization(served)
    parameters = dict(served.parameters)
    if setup is not None:
        parameters[THREAD_PARAMETER[served.backend]] = str(setup.threads)
    for key, value in parameters.items():
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
    return "\n".join(lines) + "\n"


def _optimization(served: TritonModel) -> list[str]:
    if served.graph_level is None and not served.tensorrt_precision:
        return []
    lines = ["optimization {"]
    if served.graph_level is not None:
        lines.append(f"  graph {{ level: {served.graph_level} }}")
    if served.tensorrt_precision:
        lines += [
            "  execution_accelerators { gpu_execution_accelerator: [ {",
            '    name: "tensorrt"',
            f'    parameters {{ key: "precision_mode" value: "{served.tensorrt_precision}" }}',
            "  } ] }",
        ]
    return [*lines, "}"]
