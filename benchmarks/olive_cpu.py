"""Microsoft Olive's CPU int8 workflow as a pass, so that its output is built, timed and
checked for fidelity exactly like every variant of a run."""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from passes.base import Outcome, Pass, PassContext, PassError

NOT_INSTALLED = "not installed (pip install olive-ai requests)"


def olive_version() -> str | None:
    """The installed olive-ai version, or None when Olive cannot be imported."""
    if importlib.util.find_spec("olive") is None:
        return None
    return metadata.version("olive-ai")


@dataclass(frozen=True)
class OliveCpuInt8(Pass):
    """The passes `olive optimize --provider CPUExecutionProvider --device cpu --precision
    int8` schedules for an ONNX model: OnnxPeepholeOptimizer, then OnnxStaticQuantization
    (int8, QOperator format, Olive's defaults otherwise), calibrated on CPU with the run's
    calibration inputs where the command would download a text data set."""

    name = "olive_cpu_int8"
    # In the variant id, so that another Olive version builds a new variant.
    olive_version: str = ""

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        # Olive sends usage data unless told not to; the benchmark runs offline.
        os.environ.setdefault("OLIVE_DISABLE_TELEMETRY", "1")
        from olive.workflows import run as olive_run

        scratch = out_dir / "scratch"
        calibration = _write_raw_samples(ctx.sample_inputs, scratch / "calibration")
        try:
            olive_run(_workflow(src, calibration, ctx.sample_inputs, scratch))
        except Exception as exc:  # Olive raises untyped errors from its passes
            raise PassError(f"Olive's workflow failed: {exc}") from exc
        produced = scratch / "output" / "model.onnx"
        if not produced.is_file():
            raise PassError(f"Olive's workflow wrote no model (see {scratch / 'output'})")
        out = out_dir / "model.onnx"
        shutil.move(produced, out)
        shutil.rmtree(scratch, ignore_errors=True)
        return Outcome(out, changed=True, note=f"olive-ai {self.olive_version}")


def _write_raw_samples(samples: dict[str, np.ndarray], folder: Path) -> Path:
    """One raw file per sample and input, in the layout Olive's RawDataContainer reads:
    FOLDER/INPUT_NAME/NNNNN.raw."""
    for name, array in samples.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(len(array)):
            np.ascontiguousarray(array[index : index + 1]).tofile(
                folder / name / f"{index:05d}.raw"
            )
    return folder


def _workflow(
    model: Path, calibration: Path, samples: dict[str, np.ndarray], scratch: Path
) -> dict[str, Any]:
    """The Olive workflow config: the model, the calibration data, the passes, local CPU."""
    names = list(samples)
    cpu = {"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}
    return {
        "input_model": {"type": "ONNXModel", "model_path": str(model)},
        "systems": {"local_system": {"type": "LocalSystem", "accelerators": [cpu]}},
        "data_configs": [
            {
                "name": "calibration",
                "type": "RawDataContainer",
                "load_dataset_config": {
                    "data_dir": str(calibration),
                    "input_names": names,
                    "input_shapes": [[1, *samples[n].shape[1:]] for n in names],
                    "input_types": [str(samples[n].dtype) for n in names],
                },
            }
        ],
        "passes": {
            "peephole": {"type": "OnnxPeepholeOptimizer"},
            "quantize": {
                "type": "OnnxStaticQuantization",
                "precision": "int8",
                "quant_format": "QOperator",
                "data_config": "calibration",
                "calibration_providers": ["CPUExecutionProvider"],
            },
        },
        "target": "local_system",
        "host": "local_system",
        "output_dir": str(scratch / "output"),
        "cache_dir": str(scratch / "cache"),
        "evaluate_input_model": False,
        "log_severity_level": 3,
    }
