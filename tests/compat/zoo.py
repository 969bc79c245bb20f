"""Well-known architectures nobody on this team wrote, saved the ways users save them.

Image and language models are transformers' own classes built from their configs (random
weights), recurrent nets are torch's LSTM and GRU. The image models come from transformers,
not torchvision: the torchvision wheel the package index serves for this torch version is
built against CUDA torch, and its compiled ops fail to import beside the CPU build.

`size` is "tiny" (configs that export and run in seconds, for the tests) or "full" (the
published sizes, for benchmarks/compatibility.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

IMAGE = {"tiny": 32, "full": 224}


@dataclass(frozen=True)
class Architecture:
    """How to build one architecture, and inputs for it: `inputs(batch, generator)` gives
    the named example tensors in forward order; `dynamic` names, per input, the axes that
    vary (batch, and a sequence where the model has one)."""

    name: str
    build: Callable[[str], torch.nn.Module]
    inputs: Callable[[str, int, torch.Generator], dict[str, torch.Tensor]]
    dynamic: dict[str, tuple[str, ...]]


def _image_inputs(channels: int = 3):
    def make(size: str, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        side = IMAGE[size]
        return {"pixel_values": torch.randn(batch, channels, side, side, generator=generator)}

    return make


def _text_inputs(vocabulary: int, mask: bool = True):
    def make(size: str, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        length = 16 if size == "tiny" else 128
        ids = torch.randint(0, vocabulary, (batch, length), generator=generator)
        return {"input_ids": ids, **({"attention_mask": torch.ones_like(ids)} if mask else {})}

    return make


def _transformers(config_name: str, model_name: str, tiny: dict, full: dict | None = None):
    def build(size: str) -> torch.nn.Module:
        import transformers

        options = tiny if size == "tiny" else (full or {})
        config = getattr(transformers, config_name)(**options)
        return getattr(transformers, model_name)(config).eval()

    return build


class RecurrentClassifier(torch.nn.Module):
    """A recurrent encoder over (batch, time, features) with a linear head on its last state."""

    def __init__(self, cell: str, features: int, hidden: int, classes: int = 5) -> None:
        super().__init__()
        kind = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
        self.rnn = kind(features, hidden, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(x)
        return self.head(states[:, -1])


class TwoHeads(torch.nn.Module):
    """A shared trunk with two outputs: class scores and an embedding."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.trunk = torch.nn.Sequential(torch.nn.Linear(20, width), torch.nn.ReLU())
        self.classes = torch.nn.Linear(width, 4)
        self.embedding = torch.nn.Linear(width, 8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.trunk(x)
        return self.classes(hidden), self.embedding(hidden)


class MaskedBag(torch.nn.Module):
    """Token ids (int64) and a padding mask (bool) in, the masked mean embedding out."""

    def __init__(self, vocabulary: int, width: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, width)
        self.head = torch.nn.Linear(width, 3)

    def forward(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        vectors = self.embedding(ids) * keep.unsqueeze(-1).to(torch.float32)
        counts = keep.sum(dim=1, keepdim=True).clamp(min=1).to(torch.float32)
        return self.head(vectors.sum(dim=1) / counts)


def _sequence_inputs(size: str, batch: int, generator: torch.Generator) -> dict:
    return {"x": torch.randn(batch, 12 if size == "tiny" else 64, 16, generator=generator)}


def _bag_inputs(size: str, batch: int, generator: torch.Generator) -> dict:
    ids = torch.randint(0, 50, (batch, 10), generator=generator)
    keep = torch.rand(batch, 10, generator=generator) > 0.2
    return {"ids": ids, "keep": keep}


_TINY_TEXT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
    "vocab_size": 200,
}
BATCH = ("batch",)
TEXT = ("batch", "sequence")

ARCHITECTURES = {
    a.name: a
    for a in [
        Architecture(
            "resnet",
            _transformers(
                "ResNetConfig",
                "ResNetForImageClassification",
                {"embedding_size": 8, "hidden_sizes": [8, 16, 24, 32], "depths": [1, 1, 1, 1]},
            ),
            _image_inputs(),
            {"pixel_values": BATCH},
        ),
        Architecture(
            "mobilenet",
            _transformers(
                "MobileNetV2Config",
                "MobileNetV2ForImageClassification",
                {"depth_multiplier": 0.35, "image_size": 32},
            ),
            _image_inputs(),
            {"pixel_values": BATCH},
        ),
        Architecture(
            "efficientnet",
            _transformers(
                "EfficientNetConfig",
                "EfficientNetForImageClassification",
                {
                    "width_coefficient": 0.25,
                    "depth_coefficient": 0.25,
                    "image_size": 32,
                    # the head's width is not scaled by width_coefficient
                    "hidden_dim": 320,
                },
            ),
            _image_inputs(),
            {"pixel_values": BATCH},
        ),
        Architecture(
            "vit",
            _transformers(
                "ViTConfig",
                "ViTForImageClassification",
                {
                    "hidden_size": 32,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 2,
                    "intermediate_size": 37,
                    "image_size": 32,
                    "patch_size": 8,
                },
            ),
            _image_inputs(),
            {"pixel_values": BATCH},
        ),
        Architecture(
            "convnext",
            _transformers(
                "ConvNextConfig",
                "ConvNextForImageClassification",
                {"hidden_sizes": [8, 16, 24, 32], "depths": [1, 1, 1, 1], "image_size": 32},
            ),
            _image_inputs(),
            {"pixel_values": BATCH},
        ),
        Architecture(
            "deeplab",
            _transformers(
                "MobileNetV2Config",
                "MobileNetV2ForSemanticSegmentation",
                {"depth_multiplier": 0.35, "image_size": 32, "num_labels": 4},
                {"num_labels": 21},
            ),
            _image_inputs(),
            {"pixel_values": BATCH},
        ),
        Architecture(
            "bert",
            _transformers("BertConfig", "BertModel", _TINY_TEXT),
            _text_inputs(200),
            {"input_ids": TEXT, "attention_mask": TEXT},
        ),
        Architecture(
            "distilbert",
            _transformers(
                "DistilBertConfig",
                "DistilBertModel",
                {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 37, "vocab_size": 200},
            ),
            _text_inputs(200),
            {"input_ids": TEXT, "attention_mask": TEXT},
        ),
        Architecture(
            "gpt2",
            _transformers(
                "GPT2Config",
                "GPT2LMHeadModel",
                {
                    "n_embd": 32,
                    "n_layer": 2,
                    "n_head": 2,
                    "n_positions": 64,
                    "vocab_size": 200,
                    "use_cache": False,
                },
                {"use_cache": False},
            ),
            _text_inputs(200, mask=False),
            {"input_ids": TEXT},
        ),
        Architecture(
            "lstm",
            lambda size: RecurrentClassifier("lstm", 16, 24 if size == "tiny" else 256).eval(),
            _sequence_inputs,
            {"x": BATCH},
        ),
        Architecture(
            "gru",
            lambda size: RecurrentClassifier("gru", 16, 24 if size == "tiny" else 256).eval(),
            _sequence_inputs,
            {"x": BATCH},
        ),
        Architecture(
            "two_outputs",
            lambda size: TwoHeads(16 if size == "tiny" else 512).eval(),
            lambda size, batch, generator: {"x": torch.randn(batch, 20, generator=generator)},
            {"x": BATCH},
        ),
        Architecture(
            "int64_and_bool",
            lambda size: MaskedBag(50, 8 if size == "tiny" else 256).eval(),
            _bag_inputs,
            {"ids": BATCH, "keep": BATCH},
        ),
    ]
}


@dataclass(frozen=True)
class Saved:
    """A model file as a user saved it, and what `optimize run` needs to read it."""

    path: Path
    trust_pickle: bool = False
    # --input flags, for the forms that do not record input shapes.
    inputs: tuple[str, ...] = ()


def _dims(architecture: Architecture, example: dict[str, torch.Tensor]):
    shared: dict[str, torch.export.Dim] = {}
    return {
        name: {
            axis: shared.setdefault(
                label,
                torch.export.Dim(
                    # a sequence up to four times the example's: within every zoo model's positions
                    label,
                    max=4 * example[name].shape[axis] if axis else None,
                ),
            )
            for axis, label in enumerate(architecture.dynamic[name])
        }
        for name in example
    }


def input_flags(architecture: Architecture, example: dict[str, torch.Tensor]) -> tuple[str, ...]:
    """--input flags as a user types them: name:dims:dtype, the dynamic axes named."""
    flags = []
    for name, tensor in example.items():
        dims = [str(d) for d in tensor.shape]
        for axis, label in enumerate(architecture.dynamic[name]):
            dims[axis] = label
        flags.append(f"{name}:{','.join(dims)}:{str(tensor.dtype).removeprefix('torch.')}")
    return tuple(flags)


def save(architecture: Architecture, form: str, model, example, folder: Path) -> Saved:
    """Save `model` in `form` under `folder` as users do; raises what the saver raises."""
    folder.mkdir(parents=True, exist_ok=True)
    args = tuple(example.values())
    dims = _dims(architecture, example)
    if form in ("pt2", "pt2_keywords"):
        path = folder / "model.pt2"
        if form == "pt2":
            program = torch.export.export(model, args, dynamic_shapes=tuple(dims.values()))
        else:
            program = torch.export.export(model, (), dict(example), dynamic_shapes=dims)
        torch.export.save(program, path)
        return Saved(path)
    if form in ("torchscript_traced", "torchscript_scripted"):
        path = folder / "model.ts"
        if form == "torchscript_traced":
            if hasattr(model, "config"):
                # Hugging Face's TorchScript guide: tuples out, since torch's TorchScript
                # exporter cannot write the dicts a traced ModelOutput becomes.
                model.config.return_dict = False
            scripted = torch.jit.trace(model, args, strict=False)
        else:
            scripted = torch.jit.script(model)
        torch.jit.save(scripted, str(path))
        return Saved(path, inputs=input_flags(architecture, example))
    if form == "pickle":
        path = folder / "model.pt"
        torch.save(model, path)
        return Saved(path, trust_pickle=True, inputs=input_flags(architecture, example))
    path = folder / "model.onnx"
    names = list(example)
    if form == "onnx_dynamo":
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=names,
            dynamic_shapes=tuple(dims.values()),
            dynamo=True,
            verbose=False,
        )
    elif form == "onnx_torchscript":
        axes = {name: dict(enumerate(architecture.dynamic[name])) for name in names}
        torch.onnx.export(
            model, args, str(path), input_names=names, dynamic_axes=axes, dynamo=False
        )
    else:
        raise ValueError(f"unknown save form {form}")
    return Saved(path)


FORMS = (
    "pt2",
    "pt2_keywords",
    "torchscript_traced",
    "torchscript_scripted",
    "pickle",
    "onnx_dynamo",
    "onnx_torchscript",
)


def reference_outputs(model, example: dict[str, torch.Tensor]) -> list:
    """The model's outputs on `example` as flat numpy arrays, in output order."""
    from passes.base import TensorSpec
    from passes.torch_run import run_torch

    specs = [
        TensorSpec(name, tuple(t.shape), str(t.dtype).removeprefix("torch."))
        for name, t in example.items()
    ]
    return run_torch(model, {k: v.numpy() for k, v in example.items()}, specs)
