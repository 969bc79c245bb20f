"""Hugging Face causal LM -> OpenVINO GenAI folder: optimum-intel's export (stateful KV
cache, converted tokenizer) and NNCF weight compression to int8 or int4, run by the Python
environment optimum-intel is installed in."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hardware.errors import UserError
from hardware.targets import Target
from hardware.weight_precision import weight_precision
from passes.base import ARTIFACT_NAMES, Outcome, Pass, PassContext, PassError
from passes.hf_folder import hf_config, largest_dividing_group, linear_input_widths

INSTALL = (
    "make setup (it layers optimum-intel and the transformers it pins over the project's "
    "environment, in .venv/optimum-intel)"
)
WEIGHTS = ("fp32", "fp16", "int8", "int4")
FOLDER = ARTIFACT_NAMES["openvino_genai_folder"]
# Where `make setup` puts optimum-intel: an environment of its own inside the project's, with
# the project's packages behind its own (optimum-intel pins transformers below 5.6).
EXPORTER_ENV = "optimum-intel"


def exporter_python() -> Path | None:
    """The Python that runs optimum-intel: the environment layered over this one, else this
    interpreter where optimum-intel is installed beside it; None when neither is."""
    layered = Path(sys.prefix) / EXPORTER_ENV / "bin" / "python"
    if layered.is_file():
        return layered
    if importlib.util.find_spec("optimum") and importlib.util.find_spec("optimum.intel"):
        return Path(sys.executable)
    return None


@dataclass(frozen=True)
class ExportOpenVinoGenAi(Pass):
    """Export a causal LM folder with optimum-intel for OpenVINO GenAI's LLMPipeline, its
    tokenizer converted by openvino-tokenizers, the weights compressed by NNCF.

    `weights`: fp32 or fp16 (stored so; the CPU picks its compute precision at load),
    int8 (asymmetric per channel), or int4 in groups of `group_size` input channels
    (-1: per channel), `symmetric` or not, `ratio` of the layers in int4 and the rest in
    int8. `awq` and `scale_estimation` are NNCF's data-aware int4 corrections on `samples`
    calibration texts: the paragraphs of the text file `dataset`, or else the sample
    input_ids the run provides, decoded (AWQ alone runs data-free without either).
    """

    name = "export_openvino_genai"
    consumes = "hf_folder"
    produces = "openvino_genai_folder"
    # The slowdown diagnosis reads ONNX conversion nodes, which an IR folder has none of:
    # what this export stores is read back by weight_precision instead.
    lowers_precision = False
    libraries = ("optimum-intel", "openvino", "openvino-tokenizers", "nncf", "transformers")
    weights: str = "fp32"
    symmetric: bool = False
    group_size: int = 128
    ratio: float = 1.0
    awq: bool = False
    scale_estimation: bool = False
    dataset: str = ""
    samples: int = 32

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise UserError(
                f"{self.name} weights {self.weights!r}: use one of {', '.join(WEIGHTS)}"
            )
        if self.group_size != -1 and self.group_size < 1:
            raise UserError(f"{self.name} group_size {self.group_size}: use -1 or a positive size")
        if not 0 < self.ratio <= 1:
            raise UserError(f"{self.name} ratio {self.ratio}: use a share in (0, 1]")
        int4_only = {"awq": self.awq, "scale_estimation": self.scale_estimation}
        int4_only["ratio"] = self.ratio != 1.0
        if self.weights != "int4" and any(int4_only.values()):
            asked = ", ".join(k for k, v in int4_only.items() if v)
            raise UserError(f"{self.name}: {asked} applies to int4 weights only")

    def unsupported(self, target: Target) -> str | None:
        if target.is_gpu:
            return "OpenVINO GenAI runs on Intel devices, not on an NVIDIA GPU"
        if exporter_python() is None:
            return f"optimum-intel is not installed: {INSTALL}"
        return None

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        config = hf_config(src)
        if self.weights == "int4" and self.group_size != -1:
            self._check_group_size(config)
        texts = self._calibration_texts(src, ctx) if self.awq or self.scale_estimation else []
        if self.scale_estimation and not texts:
            raise PassError(
                "scale estimation needs calibration text: give dataset=PATH (a text file) "
                "or sample input_ids"
            )
        if reason := self.unsupported(ctx.target):
            raise PassError(reason)
        folder = out_dir / FOLDER
        request = {"src": str(src), "folder": str(folder), "texts": texts}
        request["options"] = dataclasses.asdict(self)
        # A child process: optimum-intel may live in an environment of its own, and the
        # export's memory (the model traced in PyTorch) is returned when it ends.
        done = subprocess.run(
            [str(exporter_python()), "-m", __name__],
            input=json.dumps(request),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            output = done.stderr or done.stdout
            last = next((line for line in reversed(output.splitlines()) if line.strip()), "")
            raise PassError(f"OpenVINO export of {src.name} failed: {last}")
        precision = weight_precision(folder)
        return Outcome(
            folder,
            changed=True,
            note=f"{self.weights} export for OpenVINO GenAI: weights {precision.describe()}",
            metrics=precision.metrics(),
        )

    def _check_group_size(self, config: dict[str, object]) -> None:
        """NNCF needs the group size to divide every int4 layer's input width; say so with
        the widths and a size that works, before minutes of export."""
        widths = linear_input_widths(config)
        misfits = {name: w for name, w in widths.items() if w % self.group_size}
        if not misfits:
            return
        named = ", ".join(f"{w} ({name})" for name, w in misfits.items())
        fits = largest_dividing_group(widths, self.group_size)
        advice = f"group_size={fits}" if fits else "group_size=-1 (per channel)"
        raise PassError(
            f"int4 group size {self.group_size} does not divide the input width {named} of "
            f"the model's linear layers: use {advice}"
        )

    def _calibration_texts(self, src: Path, ctx: PassContext) -> list[str]:
        """Up to `samples` texts: the dataset file's paragraphs, or the sample input_ids
        decoded by the model's tokenizer."""
        if self.dataset:
            path = Path(self.dataset)
            if not path.is_file():
                raise PassError(f"calibration dataset {path} is not a file")
            paragraphs = [p.strip() for p in path.read_text().split("\n\n") if p.strip()]
            return paragraphs[: self.samples]
        ids = ctx.sample_inputs.get("input_ids")
        if ids is None:
            return []
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
        return [tokenizer.decode(list(row)) for row in ids[: self.samples]]


def export(src: Path, folder: Path, options: ExportOpenVinoGenAi, texts: list[str]) -> None:
    """The export itself, in the process optimum-intel runs in: float IR and tokenizer,
    then NNCF's compression of a copy for int8 and int4."""
    compressed = options.weights in ("int8", "int4")
    float_folder = folder.with_name(f"{folder.name}_float") if compressed else folder
    try:
        _export_float(src, float_folder, options.weights)
        if compressed:
            _compress(src, float_folder, folder, options, texts)
    finally:
        if compressed:
            shutil.rmtree(float_folder, ignore_errors=True)


def _export_float(src: Path, folder: Path, weights: str) -> None:
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig

    main_export(
        str(src),
        output=folder,
        task="text-generation-with-past",
        # An explicit float dtype: without one, optimum compresses models over 1B
        # parameters to int8 by itself.
        ov_config=OVConfig(dtype="fp16" if weights == "fp16" else "fp32"),
        convert_tokenizer=True,
        library_name="transformers",
        local_files_only=True,
    )


def _compress(
    src: Path, float_folder: Path, folder: Path, options: ExportOpenVinoGenAi, texts: list[str]
) -> None:
    from optimum.intel import OVModelForCausalLM, OVWeightQuantizationConfig

    int4 = options.weights == "int4"
    quantization = OVWeightQuantizationConfig(
        bits=4 if int4 else 8,
        sym=options.symmetric,
        group_size=options.group_size if int4 else -1,
        ratio=options.ratio,
        quant_method="awq" if options.awq else "default",
        scale_estimation=options.scale_estimation or None,
        dataset=texts or None,
        tokenizer=str(src) if texts else None,
        num_samples=len(texts) or None,
    )
    model = OVModelForCausalLM.from_pretrained(
        float_folder, compile=False, quantization_config=quantization
    )
    model.save_pretrained(folder)
    # The tokenizer, its OpenVINO conversion and the configs come from the float export.
    for file in float_folder.iterdir():
        if file.is_file() and not (folder / file.name).exists():
            shutil.copy2(file, folder / file.name)


if __name__ == "__main__":
    request = json.load(sys.stdin)
    export(
        Path(request["src"]),
        Path(request["folder"]),
        ExportOpenVinoGenAi(**request["options"]),
        request["texts"],
    )
