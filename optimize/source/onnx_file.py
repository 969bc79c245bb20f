"""An ONNX source: its input spec read from the graph (weights stay on disk), its external
data checked, its content id and the integer inputs that index an embedding table."""

from __future__ import annotations

from pathlib import Path

from hardware.model_files import external_data_files
from optimize.config.input_flags import InputFlag
from optimize.errors import UserError
from optimize.source.files import file_digest, not_a_model
from optimize.source.index_ranges import onnx_index_limits
from optimize.source.input_spec import apply_flags_by_name, onnx_input_specs
from optimize.source.onnx_checks import check_onnx_loads
from passes.base import TensorSpec


def load_onnx_file(
    path: Path, flags: list[InputFlag]
) -> tuple[list[TensorSpec], str, dict[str, int]]:
    """The ONNX file's inputs with the --input flags applied, its content id (the file and
    its external data) and the inputs that index an embedding table."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        # Weights stay on disk: only the graph is needed to read the input spec.
        model = onnx.load(str(path), load_external_data=False)
    except DecodeError:
        raise not_a_model(path, "not a torch archive and not a valid ONNX protobuf") from None
    graph = model.graph
    if not (graph.node or graph.input or graph.output):
        raise not_a_model(path, "it parses as ONNX but holds no graph")
    data_files = external_data_files(path)
    missing = [f.name for f in data_files if not f.is_file()]
    if missing:
        raise UserError(
            f"{path} keeps its weights in {', '.join(missing)}, which is missing beside it; "
            "copy the external-data file(s) next to the model"
        )
    check_onnx_loads(path)
    declared = onnx_input_specs(path, graph)
    inputs = apply_flags_by_name(path, declared, flags)
    return inputs, file_digest([path, *data_files]), onnx_index_limits(graph)
