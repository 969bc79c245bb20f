"""Int8 by NNCF's post-training quantization, in the QDQ form OpenVINO runs as int8."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hardware.errors import UserError
from hardware.targets import Target
from passes.base import Outcome, Pass, PassContext, PassError
from passes.onnx_files import has_attention, needs_external_data, op_histogram, save_proto_model
from passes.quant_prep import preprocess_for_quantization
from passes.quantize_static import WEIGHTED_OPS, calibration_batch

PRESETS = ("performance", "mixed")


@dataclass(frozen=True)
class QuantizeNncf(Pass):
    """NNCF's int8 post-training quantization (symmetric weights per channel, statistics
    on the run's calibration inputs, fast bias correction), with its transformer scheme
    for graphs that have attention. Its QDQ model is meant for OpenVINO, whose rows run it
    as int8; ONNX Runtime runs it too."""

    name = "quantize_nncf"
    lowers_precision = True
    portable_int8 = True
    calibrates = True
    libraries = ("onnx", "nncf")
    preset: str = "performance"
    samples: int = 128
    # None: decide from the graph (a Softmax with a LayerNorm or mean-reduction means a
    # transformer).
    transformer: bool | None = None
    # Nodes of the pre-processed model left in float (NNCF's ignored scope): how the
    # accuracy fallback repairs a variant outside tolerance.
    nodes_to_exclude: tuple[str, ...] = ()

    @property
    def repair_op_types(self) -> tuple[str, ...]:
        """Op types whose nodes the accuracy fallback may keep in float."""
        return WEIGHTED_OPS

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise UserError(
                f"quantize_nncf preset '{self.preset}': use one of {', '.join(PRESETS)}"
            )
        if self.samples < 1:
            raise UserError(f"quantize_nncf samples {self.samples}: use 1 or more")

    def unsupported(self, target: Target) -> str | None:
        if target.is_gpu:
            return "NNCF's int8 is for OpenVINO on Intel devices; on an NVIDIA GPU int8 runs through TensorRT"
        # Looked up, not imported: importing NNCF imports PyTorch, a second or more.
        if importlib.util.find_spec("nncf") is None:
            return "NNCF is not installed: pip install nncf"
        return None

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        import nncf
        import onnx

        if not ctx.sample_inputs:
            raise PassError("NNCF quantization needs sample inputs for calibration")
        logging.getLogger("nncf").setLevel(logging.ERROR)
        names = [s.name for s in ctx.inputs]
        batch = calibration_batch(ctx)
        total = min(self.samples, len(next(iter(ctx.sample_inputs.values()))))
        batches = [
            {n: ctx.sample_inputs[n][i : i + batch] for n in names}
            for i in range(0, total - total % batch or total, batch)
        ]
        transformer = self.transformer
        if transformer is None:
            # The transformer scheme keeps LayerNorm, Softmax and attention's activations
            # in float, where int8 would hurt them.
            transformer = has_attention(op_histogram(src))
        # The pre-processed model, as ONNX Runtime's quantizers take it: its node names are
        # the ones the fallback ranks and names in nodes_to_exclude.
        with tempfile.TemporaryDirectory() as scratch:
            model = onnx.load(str(preprocess_for_quantization(src, Path(scratch))))
            ignored = nncf.IgnoredScope(names=list(self.nodes_to_exclude))
            try:
                # NNCF draws progress bars: a child process's terminal is the user's.
                quiet = io.StringIO()
                with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                    quantized = nncf.quantize(
                        model,
                        nncf.Dataset(batches),
                        preset=nncf.QuantizationPreset(self.preset),
                        model_type=nncf.ModelType.TRANSFORMER if transformer else None,
                        subset_size=len(batches),
                        ignored_scope=ignored,
                    )
            except Exception as exc:  # NNCF raises untyped errors from its graph passes
                raise PassError(f"NNCF quantization failed: {exc}") from exc
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / "model.onnx"
        save_proto_model(quantized, out, external=needs_external_data(src))
        qdq = sum(n for op, n in op_histogram(out).items() if op.endswith("QuantizeLinear"))
        scheme = "transformer scheme" if transformer else "default scheme"
        kept = (
            f"; {len(self.nodes_to_exclude)} node(s) kept in float" if self.nodes_to_exclude else ""
        )
        return Outcome(
            out,
            changed=True,
            note=f"{qdq} Q/DQ nodes by NNCF ({self.preset}, {scheme}); calibrated on {total} samples{kept}",
        )
