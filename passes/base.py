"""The pass contract: what a pass is, what it returns, and how it fails."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from hardware.errors import UserError
from hardware.targets import Target

# A model file or folder as a pass takes or makes it: a PyTorch program, an ONNX file, or a
# causal language model in a runtime's own format (a Hugging Face folder, an OpenVINO GenAI
# folder, an ONNX Runtime GenAI folder, a GGUF file).
ModelKind = Literal[
    "torch", "onnx", "hf_folder", "openvino_genai_folder", "ortgenai_folder", "gguf"
]
# What a pass that makes each kind writes in its folder: the name tells the kind apart. A
# Hugging Face folder is only ever a source.
ARTIFACT_NAMES: dict[ModelKind, str] = {
    "onnx": "model.onnx",
    "torch": "model.pt2",
    "openvino_genai_folder": "openvino",
    "ortgenai_folder": "ortgenai",
    "gguf": "model.gguf",
}


def artifact_kind(path: Path) -> ModelKind:
    """The kind of a model file or folder, by the name its pass gives it; any other folder
    is a Hugging Face one, any other file ONNX (a user's .onnx source)."""
    for kind, name in ARTIFACT_NAMES.items():
        if path.name == name:
            return kind
    return "hf_folder" if path.is_dir() else "onnx"


DTYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "float64": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
}


class PassError(Exception):
    """A pass could not produce its output; the message says why and what to try."""


class PassSkipped(Exception):
    """The pass has nothing to do on this model (e.g. no node it can quantize)."""


@dataclass(frozen=True)
class TensorSpec:
    """One model input: its name, dims (ints or symbolic names like 'batch') and dtype name."""

    name: str
    dims: tuple[int | str, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise UserError(
                f"input '{self.name}': unknown dtype '{self.dtype}'; use one of {', '.join(DTYPES)}"
            )

    def concrete_shape(self, batch: int, symbolic_size: int = 1) -> tuple[int, ...]:
        """The shape with the first dim set to `batch` when symbolic, other symbolic dims set
        to `symbolic_size`."""
        shape = []
        for i, d in enumerate(self.dims):
            if isinstance(d, int):
                shape.append(d)
            else:
                shape.append(batch if i == 0 else symbolic_size)
        return tuple(shape)

    @property
    def has_symbolic_batch(self) -> bool:
        return bool(self.dims) and isinstance(self.dims[0], str)


@dataclass
class PassContext:
    """What a pass may read besides its input file.

    `torch_model` is the loaded PyTorch object (nn.Module, ScriptModule or ExportedProgram)
    for passes that consume torch; `sample_inputs` are real or generated model inputs
    (batch first) that a pass may use for calibration or checks; `max_batch` is the most
    rows the PyTorch model accepts at once, when its program declares a bound;
    `source_file` is the user's model file as given (a GGUF, say, that the run reads as a
    dequantized folder).
    """

    target: Target
    inputs: list[TensorSpec]
    sample_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    torch_model: Any = None
    max_batch: int | None = None
    source_file: Path | None = None


@dataclass(frozen=True)
class Outcome:
    """What a pass produced: the output file, whether it changed anything, a note and any
    figures the pass measured itself (e.g. export parity)."""

    path: Path
    changed: bool
    note: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Pass:
    """A model transformation. Subclasses are frozen dataclasses whose fields are options.

    Set `name` (also the module name and CLI word), `consumes` and `produces`, and
    implement `apply`. Override `unsupported` when a target cannot benefit. The facts
    below tell the rest of the tool what the pass does, so that nothing outside this
    package needs to know a pass by its name.
    """

    name: ClassVar[str]
    consumes: ClassVar[ModelKind] = "onnx"
    produces: ClassVar[ModelKind] = "onnx"
    # Run by the tool in front of every chain (export, preprocessing), never named in one.
    lead_in: ClassVar[bool] = False
    # Lowers numeric precision (int8, int4, fp16): a slowdown is worth diagnosing.
    lowers_precision: ClassVar[bool] = False
    # Removes weights or channels from the PyTorch model.
    prunes: ClassVar[bool] = False
    # Writes standard QDQ int8, which other runtimes (OpenVINO, TensorRT) run as int8 too.
    portable_int8: ClassVar[bool] = False
    # The float type it leaves the model's compute in ("fp16"), which a server's engine
    # (TensorRT) must be told; None where the pass keeps it.
    float_precision: ClassVar[str | None] = None
    # Runs the model over the calibration inputs, so its build time grows with them.
    calibrates: ClassVar[bool] = False
    # The distributions whose versions shape the pass's output: a new version rebuilds it.
    libraries: ClassVar[tuple[str, ...]] = ("onnx",)

    @property
    def repair_op_types(self) -> tuple[str, ...]:
        """Op types whose nodes the accuracy fallback may keep in float by naming them in
        the pass's `nodes_to_exclude` option; empty for a pass the fallback cannot steer."""
        return ()

    def tied_to_hardware(self, target: Target) -> bool:
        """Whether the pass's output depends on the machine it runs on for `target`, so
        it must be built on the target's hardware (on a cluster), not anywhere."""
        return False

    @property
    def quantizes_weights_only(self) -> bool:
        """Only nodes with a constant weight are changed, so the fallback need not probe
        the others."""
        return False

    @property
    def repairable(self) -> bool:
        """Whether the accuracy fallback can keep some of this pass's nodes in float."""
        return bool(self.repair_op_types) and "nodes_to_exclude" in {
            f.name for f in dataclasses.fields(self)
        }

    def params(self) -> dict[str, Any]:
        """The pass options, as printed in reports and hashed into variant ids."""
        return dataclasses.asdict(self)

    def label(self) -> str:
        """Short human label: name plus non-default options."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        opts = [f"{k}={_short(v)}" for k, v in self.params().items() if defaults.get(k) != v]
        return f"{self.name}({', '.join(opts)})" if opts else self.name

    def unsupported(self, target: Target) -> str | None:
        """Why this pass cannot help on `target`, or None when it can."""
        return None

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        """Transform `src` into a new file under `out_dir`; never modify `src`."""
        raise NotImplementedError


def _short(value: Any) -> str:
    """An option value as a label shows it: long lists by their length."""
    if isinstance(value, (tuple, list)):
        return str(value[0]) if len(value) == 1 else f"[{len(value)} items]"
    return str(value)
