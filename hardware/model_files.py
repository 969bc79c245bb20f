"""An ONNX model's footprint on disk: its file and the external-data files it references."""

from __future__ import annotations

from pathlib import Path


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
    """Size of an ONNX model on disk, with the external-data files it references."""
    files = [model_path, *external_data_files(model_path)]
    return sum(f.stat().st_size for f in files) / 2**20
