"""The user's GGUF file as it is, for llama.cpp: a language model given as a GGUF is read as a
dequantized folder, and this puts the file itself back among the candidates, unchanged."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from hardware.model_files import is_gguf
from hardware.runtimes.llama_cpp import LlamaCppRuntime
from hardware.targets import Target
from hardware.weight_precision import weight_precision
from passes.base import ARTIFACT_NAMES, Outcome, Pass, PassContext, PassError

FILE = ARTIFACT_NAMES["gguf"]


@dataclass(frozen=True)
class SourceGguf(Pass):
    """Keep the GGUF file the model was given as: a copy, its weights as they were
    quantized, for llama.cpp to run. Only the first step of a chain: it reads the user's
    file, not the folder before it."""

    name = "source_gguf"
    consumes = "hf_folder"
    produces = "gguf"
    # The slowdown diagnosis reads ONNX conversion nodes, which a GGUF has none of.
    lowers_precision = False
    libraries = ("gguf",)

    def unsupported(self, target: Target) -> str | None:
        return LlamaCppRuntime().unavailable(target)

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        given = ctx.source_file
        if given is None or not is_gguf(given):
            raise PassError("the model was not given as a GGUF file: there is none to keep")
        out = out_dir / FILE
        out.parent.mkdir(parents=True, exist_ok=True)
        # A copy, never a link: nothing done to the output may reach the user's file.
        shutil.copyfile(given, out)
        precision = weight_precision(out)
        return Outcome(
            out,
            changed=True,
            note=f"{given.name} as given: weights {precision.describe()}",
            metrics=precision.metrics(),
        )
