"""Static int8 quantization in QDQ form, calibrated on sample inputs."""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.detect import tensorrt_available
from hardware.errors import UserError
from hardware.targets import Target
from passes.base import Outcome, Pass, PassContext, PassError
from passes.onnx_files import needs_external_data, op_histogram
from passes.quant_prep import preprocess_for_quantization, preprocessing_exclusions

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")

# Ops with weights: where quantization error starts, so where the fallback looks first.
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Attention", "LSTM", "GRU")


class _BatchReader:
    """Feeds calibration batches one at a time, so activations are never all in memory."""

    def __init__(self, feeds: dict[str, np.ndarray], names: list[str], batch: int) -> None:
        total = len(next(iter(feeds.values())))
        self._batches = iter(
            [{n: feeds[n][i : i + batch] for n in names} for i in range(0, total, batch)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        raise NotImplementedError("calibration reads each batch once")


@dataclass(frozen=True)
class QuantizeStatic(Pass):
    """QDQ int8 with per-channel weights by default, calibrated with `calibration`
    (minmax, entropy or percentile) on the run's sample inputs."""

    name = "quantize_static"
    lowers_precision = True
    portable_int8 = True
    calibrates = True
    libraries = ("onnx", "onnxruntime")
    calibration: str = "minmax"
    per_channel: bool = True
    # 7-bit weights: on x86 CPUs without VNNI, ONNX Runtime's u8s8 kernels use VPMADDUBSW,
    # whose int16 pair sums saturate with full-range (per-channel) 8-bit weights. On the
    # digits CNN on an AVX2 CPU 8-bit weights flipped 5 of 450 predictions, 7-bit ones 1.
    reduce_range: bool = True
    samples: int = 128
    # Quantize only the ops with weights (Conv, MatMul, Gemm …), calibrating only their
    # inputs: a tensor of extreme range elsewhere (the -3.4e38 attention-mask fill of BERT
    # exports, before Softmax) then cannot wreck calibration.
    weighted_only: bool = False
    nodes_to_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATION_METHODS:
            raise UserError(
                f"calibration '{self.calibration}': use one of {', '.join(CALIBRATION_METHODS)}"
            )

    @property
    def repair_op_types(self) -> tuple[str, ...]:
        """Op types whose nodes the accuracy fallback may keep in float."""
        return WEIGHTED_OPS

    def unsupported(self, target: Target) -> str | None:
        if target.is_gpu and not tensorrt_available():
            return (
                "ONNX Runtime's CUDA provider runs QDQ int8 in float; on GPU int8 runs only "
                "through TensorRT, which this ONNX Runtime lacks (install TensorRT beside "
                "onnxruntime-gpu)"
            )
        return None

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

        if not ctx.sample_inputs:
            raise PassError("static quantization needs sample inputs for calibration")
        methods = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }
        batch = calibration_batch(ctx)
        feeds = _calibration_feeds(ctx.sample_inputs, self.samples, batch)
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / "model.onnx"
        with tempfile.TemporaryDirectory() as scratch:
            prepared = preprocess_for_quantization(src, Path(scratch))
            kept_float, op_types = preprocessing_exclusions(prepared)
            if self.weighted_only:
                op_types = [op for op in (op_types or WEIGHTED_OPS) if op in WEIGHTED_OPS]
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    quantize_static(
                        prepared,
                        out,
                        _BatchReader(feeds, [s.name for s in ctx.inputs], batch),
                        quant_format=QuantFormat.QDQ,
                        per_channel=self.per_channel,
                        reduce_range=self.reduce_range,
                        nodes_to_exclude=list(self.nodes_to_exclude) + kept_float,
                        op_types_to_quantize=op_types,
                        calibrate_method=methods[self.calibration],
                        use_external_data_format=needs_external_data(src),
                        extra_options={"CalibTensorRangeSymmetric": False},
                        calibration_cache_path=None,
                    )
            except Exception as exc:  # onnxruntime's quantizer raises untyped errors
                hint = ""
                if "bins" in str(exc) and not self.weighted_only:
                    hint = (
                        ": a tensor's range is too wide to bin (such as an attention mask filled "
                        "with -3.4e38); weighted_only=true calibrates only the inputs of ops "
                        "with weights"
                    )
                raise PassError(f"static quantization failed: {exc}{hint}") from exc
        qdq = sum(
            n
            for op, n in op_histogram(out).items()
            if op.endswith(("QuantizeLinear", "DequantizeLinear"))
        )
        count = len(next(iter(feeds.values())))
        return Outcome(
            out,
            changed=True,
            note=f"{qdq} Q/DQ nodes; calibrated on {count} samples ({self.calibration})",
        )


def _calibration_feeds(
    samples: dict[str, np.ndarray], limit: int, batch: int
) -> dict[str, np.ndarray]:
    """The first `limit` rows of each input, cut to whole batches: entropy and percentile
    calibration stack all batches' activations into one array, which a shorter last batch
    breaks."""
    total = min(limit, len(next(iter(samples.values()))))
    rows = total - total % batch if total >= batch else total
    return {n: a[:rows] for n, a in samples.items()}


def calibration_batch(ctx: PassContext) -> int:
    """Batch rows per calibration step: the model's fixed batch if it has one, else 16."""
    first = ctx.inputs[0].dims[0] if ctx.inputs and ctx.inputs[0].dims else "batch"
    return first if isinstance(first, int) else 16
