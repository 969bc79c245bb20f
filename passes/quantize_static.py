"""Static int8 quantization in QDQ form, calibrated on sample inputs."""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.targets import Target
from passes.base import Outcome, Pass, PassContext, PassError
from passes.onnx_files import needs_external_data, op_histogram
from passes.quant_prep import preprocess_for_quantization

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


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
    calibration: str = "minmax"
    per_channel: bool = True
    samples: int = 128
    nodes_to_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(
                f"calibration '{self.calibration}': use one of {', '.join(CALIBRATION_METHODS)}"
            )

    def unsupported(self, target: Target) -> str | None:
        if target.is_gpu:
            return "ONNX Runtime's CUDA provider runs QDQ int8 in float; on GPU int8 runs through TensorRT"
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
        feeds = {n: a[: self.samples] for n, a in ctx.sample_inputs.items()}
        scratch = out_dir / "scratch"
        prepared = preprocess_for_quantization(src, scratch)
        batch = _calibration_batch(ctx)
        out = out_dir / "model.onnx"
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_static(
                    prepared,
                    out,
                    _BatchReader(feeds, [s.name for s in ctx.inputs], batch),
                    quant_format=QuantFormat.QDQ,
                    per_channel=self.per_channel,
                    nodes_to_exclude=list(self.nodes_to_exclude),
                    calibrate_method=methods[self.calibration],
                    use_external_data_format=needs_external_data(src),
                    extra_options={"CalibTensorRangeSymmetric": False},
                    calibration_cache_path=None,
                )
        except Exception as exc:  # onnxruntime's quantizer raises untyped errors
            raise PassError(f"static quantization failed: {exc}") from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        qdq = sum(n for op, n in op_histogram(out).items() if op.endswith("QuantizeLinear"))
        count = len(next(iter(feeds.values())))
        return Outcome(
            out,
            changed=True,
            note=f"{qdq} Q/DQ nodes; calibrated on {count} samples ({self.calibration})",
        )


def _calibration_batch(ctx: PassContext) -> int:
    """Batch rows per calibration step: the model's fixed batch if it has one, else 16."""
    first = ctx.inputs[0].dims[0] if ctx.inputs and ctx.inputs[0].dims else "batch"
    return first if isinstance(first, int) else 16
