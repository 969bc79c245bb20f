"""Hugging Face causal LM -> ONNX Runtime GenAI folder: its model builder writes the decoder
with its KV cache, genai_config.json and the tokenizer, weights in fp32, int8 or int4."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hardware.errors import UserError
from hardware.targets import Target
from hardware.weight_precision import weight_precision
from passes.base import ARTIFACT_NAMES, Outcome, Pass, PassContext, PassError
from passes.hf_folder import architecture, hf_config

INSTALL = "pip install 'optimize[llm]'  (onnxruntime-genai, onnx-ir)"
WEIGHTS = ("fp32", "int8", "int4")
# MatMulNBits' kernels take these block sizes.
BLOCK_SIZES = (16, 32, 64, 128, 256)
ACCURACY_LEVELS = range(5)
# The builder's methods: round to nearest ("default" as it calls RTN without a config, or
# "rtn"), llama.cpp's k-quant, and the mixes that keep some MatMuls in int8: "_last" the
# head, "k_quant_mixed" also llama.cpp's most sensitive layers.
ALGORITHMS = ("default", "rtn", "k_quant", "rtn_last", "k_quant_last", "k_quant_mixed")
FOLDER = ARTIFACT_NAMES["ortgenai_folder"]


@dataclass(frozen=True)
class ExportOrtGenAi(Pass):
    """Build an ONNX Runtime GenAI folder for the CPU with the package's own model builder.

    `weights` int8 and int4 quantize the MatMul weights blockwise (MatMulNBits), in blocks
    of `block_size` input channels, `symmetric` or with zero points. `accuracy_level` is
    the least precision MatMulNBits computes in (1 fp32, 2 fp16, 3 bf16, 4 int8): at 4 the
    CPU kernel quantizes activations to int8 per block and uses integer dot products,
    its fastest path where the CPU has VNNI. `algorithm` is the builder's quantization
    method (see ALGORITHMS).
    """

    name = "export_ortgenai"
    consumes = "hf_folder"
    produces = "ortgenai_folder"
    # The slowdown diagnosis looks for ONNX conversion nodes, which MatMulNBits carries
    # none of: what this build stores is read back by weight_precision instead.
    lowers_precision = False
    libraries = ("onnxruntime-genai", "onnx-ir", "onnxruntime", "transformers")
    weights: str = "fp32"
    block_size: int = 32
    accuracy_level: int = 4
    symmetric: bool = True
    algorithm: str = "default"

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise UserError(
                f"{self.name} weights {self.weights!r}: use one of {', '.join(WEIGHTS)}"
            )
        if self.block_size not in BLOCK_SIZES:
            raise UserError(
                f"{self.name} block_size {self.block_size}: use one of "
                f"{', '.join(map(str, BLOCK_SIZES))}"
            )
        if self.accuracy_level not in ACCURACY_LEVELS:
            raise UserError(f"{self.name} accuracy_level {self.accuracy_level}: use 0 to 4")
        if self.algorithm not in ALGORITHMS:
            raise UserError(
                f"{self.name} algorithm {self.algorithm!r}: use one of {', '.join(ALGORITHMS)}"
            )
        if self.algorithm != "default" and self.weights == "fp32":
            raise UserError(f"{self.name}: algorithm applies to int8 and int4 weights only")

    def unsupported(self, target: Target) -> str | None:
        if target.is_gpu:
            return "this build targets ONNX Runtime GenAI's CPU package"
        try:
            import onnx_ir  # noqa: F401 (the builder imports it without declaring it)
            import onnxruntime_genai  # noqa: F401
        except ImportError as exc:
            return f"{exc.name} is not installed: {INSTALL}"
        return None

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        config = hf_config(src)
        folder, cache = out_dir / FOLDER, out_dir / "builder_cache"
        options = ["hf_token=false"]
        if self.weights != "fp32":
            options += [
                f"block_size={self.block_size}",
                f"accuracy_level={self.accuracy_level}",
                f"is_symmetric={str(self.symmetric).lower()}",
            ]
        if self.algorithm != "default":
            options.append(f"algo_config={self.algorithm}")
        # The builder's command line is its documented interface; in a child process its
        # memory (a full copy of the weights) is returned when it ends.
        command = [
            *(sys.executable, "-m", "onnxruntime_genai.models.builder"),
            *("-i", str(src), "-o", str(folder), "-p", self.weights, "-e", "cpu"),
            *("-c", str(cache), "--extra_options", *options),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if done.returncode != 0:
            raise PassError(self._failure(architecture(config), done.stderr or done.stdout))
        precision = weight_precision(folder)
        return Outcome(
            folder,
            changed=True,
            note=f"{self.weights} build for ONNX Runtime GenAI: weights {precision.describe()}",
            metrics=precision.metrics(),
        )

    @staticmethod
    def _failure(model_class: str, output: str) -> str:
        """The builder's own last words, with the architecture where it has no builder."""
        last = next((line for line in reversed(output.splitlines()) if line.strip()), "")
        if "is not currently supported" in last:
            return f"ONNX Runtime GenAI's model builder does not support {model_class}: {last}"
        return f"ONNX Runtime GenAI's model builder failed on {model_class}: {last}"
