"""Hugging Face causal LM -> GGUF file for llama.cpp: llama.cpp's convert_hf_to_gguf.py, then
llama.cpp's own quantizer (through llama-cpp-python) for the k-quants and q4_0."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hardware.errors import UserError
from hardware.runtimes.llama_cpp import LlamaCppRuntime
from hardware.targets import Target
from hardware.weight_precision import weight_precision
from passes.base import ARTIFACT_NAMES, Outcome, Pass, PassContext, PassError
from passes.hf_folder import architecture, hf_config

CONVERTER = "convert_hf_to_gguf.py"
# The converter writes these types itself.
CONVERTED = ("f32", "f16", "bf16", "q8_0")
# These llama.cpp's quantizer makes from an f16 conversion, by its LLAMA_FTYPE name.
QUANTIZED = {"q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
WEIGHTS = (*CONVERTED, *QUANTIZED)
FILE = ARTIFACT_NAMES["gguf"]


def find_converter(llama_cpp_dir: str) -> Path | None:
    """llama.cpp's convert_hf_to_gguf.py: in `llama_cpp_dir`, else in $LLAMA_CPP_DIR, else on
    the PATH. It needs the rest of its source tree beside it (conversion/, gguf-py/)."""
    for folder in (llama_cpp_dir, os.environ.get("LLAMA_CPP_DIR", "")):
        if folder and (Path(folder) / CONVERTER).is_file():
            return Path(folder) / CONVERTER
    found = shutil.which(CONVERTER)
    return Path(found) if found else None


@dataclass(frozen=True)
class ExportGguf(Pass):
    """Convert a causal LM folder to one GGUF file with llama.cpp's own converter, then, for
    q4_0 and q4_k_m, quantize it with llama.cpp's quantizer (llama_model_quantize).

    `llama_cpp_dir` is a llama.cpp source tree holding convert_hf_to_gguf.py (the
    llama-cpp-python sdist carries one under vendor/llama.cpp/); empty: $LLAMA_CPP_DIR,
    then the PATH.
    """

    name = "export_gguf"
    consumes = "hf_folder"
    produces = "gguf"
    # The slowdown diagnosis reads ONNX conversion nodes, which a GGUF has none of.
    lowers_precision = False
    libraries = ("llama-cpp-python", "gguf")
    weights: str = "q8_0"
    llama_cpp_dir: str = ""

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise UserError(
                f"{self.name} weights {self.weights!r}: use one of {', '.join(WEIGHTS)}"
            )

    def unsupported(self, target: Target) -> str | None:
        # No GGUF helps where llama.cpp cannot run it.
        if reason := LlamaCppRuntime().unavailable(target):
            return reason
        if find_converter(self.llama_cpp_dir) is None:
            return (
                f"llama.cpp's {CONVERTER} was not found: give llama_cpp_dir=PATH (a llama.cpp "
                "source tree; the llama-cpp-python sdist has one under vendor/llama.cpp/), "
                "set LLAMA_CPP_DIR, or put it on the PATH"
            )
        try:
            import sentencepiece  # noqa: F401 (the converter imports it for every vocabulary)
        except ImportError:
            return "sentencepiece is not installed: pip install sentencepiece"
        return None

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        if reason := self.unsupported(ctx.target):
            raise PassError(reason)
        config = hf_config(src)
        out = out_dir / FILE
        converted = out if self.weights in CONVERTED else out_dir / "model.f16.gguf"
        self._convert(src, converted, self.weights if self.weights in CONVERTED else "f16")
        if self.weights in QUANTIZED:
            try:
                self._quantize(converted, out)
            finally:
                converted.unlink(missing_ok=True)
        precision = weight_precision(out)
        return Outcome(
            out,
            changed=True,
            note=f"{self.weights} GGUF of {architecture(config)}: weights {precision.describe()}",
            metrics=precision.metrics(),
        )

    def _convert(self, src: Path, out: Path, outtype: str) -> None:
        converter = find_converter(self.llama_cpp_dir)
        command = [sys.executable, str(converter), str(src), "--outfile", str(out)]
        done = subprocess.run([*command, "--outtype", outtype], capture_output=True, text=True)
        if done.returncode != 0:
            output = done.stderr or done.stdout
            last = next((line for line in reversed(output.splitlines()) if line.strip()), "")
            raise PassError(f"llama.cpp's {CONVERTER} failed on {src.name}: {last}")

    def _quantize(self, src: Path, out: Path) -> None:
        import llama_cpp

        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, QUANTIZED[self.weights])
        status = llama_cpp.llama_model_quantize(
            str(src).encode(), str(out).encode(), ctypes.byref(params)
        )
        if status != 0:
            raise PassError(f"llama.cpp's quantizer failed ({status}) making {self.weights}")
