"""The precision a language model's weights actually have, read back from the artifact: an
OpenVINO IR's constants, an ONNX Runtime GenAI model's MatMulNBits, a GGUF's tensor types,
a Hugging Face folder's safetensors."""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FLOAT = "float"
# The element types each format names, by the bucket they count in.
_OPENVINO_BUCKETS = {"u4": "int4", "i4": "int4", "nf4": "int4", "u8": "int8", "i8": "int8"}
_OPENVINO_FLOATS = {"f32", "f16", "bf16", "f64", "f8e4m3", "f8e5m2"}
_SAFETENSORS_BUCKETS = {"I8": "int8", "U8": "int8", "F8_E4M3": "float", "F8_E5M2": "float"}


@dataclass(frozen=True)
class WeightPrecision:
    """How many weight elements are stored at each precision ('int4', 'int8', 'float', or
    'int<bits>' for other block formats), and the format's own type names with theirs."""

    elements: dict[str, int]
    detail: dict[str, int]

    def share(self, bucket: str) -> float:
        """The fraction of weight elements stored in `bucket`."""
        total = sum(self.elements.values())
        return self.elements.get(bucket, 0) / total if total else 0.0

    def describe(self) -> str:
        """'92% int4, 8% int8': the buckets by share, largest first."""
        ranked = sorted(self.elements, key=self.elements.__getitem__, reverse=True)
        return ", ".join(f"{self.share(b):.0%} {b}" for b in ranked if self.elements[b])

    def metrics(self) -> dict[str, float]:
        """Each bucket's share as a pass's figure: {'int4_share': 0.92, …}."""
        return {f"{bucket}_share": self.share(bucket) for bucket in self.elements}


def weight_precision(artifact: Path) -> WeightPrecision:
    """The realized weight precision of `artifact`: a .gguf file, an .xml IR or a folder
    holding openvino_model.xml, an .onnx file or a folder holding model.onnx (ONNX Runtime
    GenAI), or a folder of .safetensors."""
    path = Path(artifact)
    if path.suffix == ".gguf":
        return _gguf(path)
    if path.suffix == ".xml" or (path / "openvino_model.xml").is_file():
        return _openvino(path if path.suffix == ".xml" else path / "openvino_model.xml")
    if path.suffix == ".onnx" or (path / "genai_config.json").is_file():
        return _onnx(path if path.suffix == ".onnx" else _genai_model_file(path))
    if path.is_dir() and any(path.glob("*.safetensors")):
        return _safetensors(path)
    raise ValueError(
        f"{path}: not a .gguf, OpenVINO IR, ONNX Runtime GenAI folder or safetensors folder"
    )


def _tally(pairs: list[tuple[str, str, int]]) -> WeightPrecision:
    elements: Counter[str] = Counter()
    detail: Counter[str] = Counter()
    for bucket, name, count in pairs:
        elements[bucket] += count
        detail[name] += count
    return WeightPrecision(dict(elements), dict(detail))


def _openvino(xml: Path) -> WeightPrecision:
    import openvino as ov

    pairs = []
    for op in ov.Core().read_model(xml).get_ops():
        if op.get_type_name() != "Constant":
            continue
        shape = list(op.get_output_shape(0))
        # Weights are matrices (or [rows, groups, group size]); a trailing 1 marks the
        # scales and zero points of compressed weights, rank < 2 the shapes and scalars.
        if len(shape) < 2 or shape[-1] == 1:
            continue
        kind = op.get_element_type().get_type_name()
        if kind in _OPENVINO_BUCKETS:
            pairs.append((_OPENVINO_BUCKETS[kind], kind, _count(shape)))
        elif kind in _OPENVINO_FLOATS:
            pairs.append((FLOAT, kind, _count(shape)))
    return _tally(pairs)


def _genai_model_file(folder: Path) -> Path:
    config = json.loads((folder / "genai_config.json").read_text())
    return folder / config["model"]["decoder"]["filename"]


def _onnx(model_file: Path) -> WeightPrecision:
    import onnx

    model = onnx.load(str(model_file), load_external_data=False)
    initializers = {init.name: init for init in model.graph.initializer}
    quantized_inputs: set[str] = set()
    pairs = []
    for node in model.graph.node:
        if node.op_type not in ("MatMulNBits", "GatherBlockQuantized"):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        bits = int(attrs.get("bits", 4))
        quantized_inputs.update(node.input[1:] if node.op_type == "MatMulNBits" else node.input)
        if node.op_type == "MatMulNBits":
            count = int(attrs["K"]) * int(attrs["N"])
        elif node.input[0] in initializers:
            # Packed data: 8 / bits elements per byte.
            count = _count(list(initializers[node.input[0]].dims)) * 8 // bits
        else:
            # A tied embedding gathers from the head's quantized weight, counted there.
            continue
        pairs.append((f"int{bits}", f"{node.op_type} {bits}-bit", count))
    for init in initializers.values():
        if init.name in quantized_inputs or len(init.dims) < 2:
            continue
        kind = onnx.TensorProto.DataType.Name(init.data_type).lower()
        bucket = "int8" if kind in ("int8", "uint8") else FLOAT if "float" in kind else kind
        pairs.append((bucket, kind, _count(list(init.dims))))
    return _tally(pairs)


def _gguf(path: Path) -> WeightPrecision:
    from gguf import GGUFReader

    pairs = []
    for tensor in GGUFReader(str(path)).tensors:
        kind = tensor.tensor_type.name
        bits = re.match(r"I?Q(\d)", kind)
        bucket = f"int{bits.group(1)}" if bits else FLOAT if kind.startswith(("F", "BF")) else kind
        pairs.append((bucket, kind, int(tensor.n_elements)))
    return _tally(pairs)


def _safetensors(folder: Path) -> WeightPrecision:
    pairs = []
    for file in sorted(folder.glob("*.safetensors")):
        with open(file, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        for name, entry in header.items():
            if name == "__metadata__" or len(entry["shape"]) < 2:
                continue
            kind = entry["dtype"]
            bucket = _SAFETENSORS_BUCKETS.get(kind, FLOAT if kind.startswith(("F", "BF")) else kind)
            pairs.append((bucket, kind, _count(entry["shape"])))
    return _tally(pairs)


def _count(shape: list[int]) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count
