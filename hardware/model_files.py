"""What a model file holds without running it: an ONNX file's footprint on disk (the file
and the external-data files it references) and how many heavy nodes could run at once;
whether a file is a GGUF."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

GGUF_MAGIC = b"GGUF"


def is_gguf(path: Path) -> bool:
    """Whether `path` is a GGUF file, by its magic bytes."""
    if not path.is_file():
        return False
    with path.open("rb") as file:
        return file.read(4) == GGUF_MAGIC


def external_data_files(model_path: Path) -> list[Path]:
    """The external-data files a model references, without loading their contents."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    locations = set()
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = {e.key: e.value for e in tensor.external_data}.get("location")
            if location:
                locations.add(location)
    return [model_path.parent / loc for loc in sorted(locations)]


def model_size_mb(model_path: Path) -> float:
    """Size of a model on disk: an ONNX file with the external-data files it references,
    a runtime's model folder with everything in it, or any other single file."""
    if model_path.is_dir():
        files = [f for f in model_path.rglob("*") if f.is_file()]
    elif model_path.suffix == ".onnx":
        files = [model_path, *external_data_files(model_path)]
    else:
        files = [model_path]
    return sum(f.stat().st_size for f in files) / 2**20


# Ops heavy enough that running two of them at once can pay for a second thread.
HEAVY_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "Attention", "LSTM", "GRU")


def parallel_branches(model_path: Path) -> int:
    """The most heavy nodes (HEAVY_OPS) at one depth of the graph: nodes at the same
    distance from the inputs do not depend on each other, so this many could run at once
    (a transformer's query, key and value projections: 3)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    depth_of: dict[str, int] = {}
    per_depth: Counter[int] = Counter()
    for node in graph.node:  # ONNX keeps nodes in topological order
        depth = 1 + max((depth_of.get(name, 0) for name in node.input if name), default=0)
        for name in node.output:
            depth_of[name] = depth
        if node.op_type in HEAVY_OPS:
            per_depth[depth] += 1
    return max(per_depth.values(), default=0)
