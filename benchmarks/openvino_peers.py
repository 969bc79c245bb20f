"""OpenVINO as a user would run it without this tool, for the suite to compare with: the plain
ONNX export compiled with no config, and NNCF's int8 with its defaults compiled the same
way. Timed by the tool's own loop (measure_model), their outputs judged against the plain
export's over the whole evaluation set."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from pathlib import Path

import numpy as np

from hardware.model_files import model_size_mb
from hardware.profile import TimingBudget, measure_model
from hardware.runtimes.openvino import OpenVinoRuntime, OpenVinoSettings
from hardware.targets import Target
from optimize.build.variant import RuntimeRow
from optimize.config.limits import Limits
from optimize.data.inputs import rows
from optimize.measure.verdicts import tolerance_verdict
from optimize.records.fidelity import FidelityTally

CPU = Target("cpu")
DEFAULTS = "OpenVINO defaults"
NNCF_DEFAULTS = "OpenVINO NNCF int8"
BATCH = 32


def _arrays(path: Path, names: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    with np.load(path) as data:
        return {n: data[n] for n in names}, (data["labels"] if "labels" in data else None)


def _batches(feeds: dict[str, np.ndarray]):
    total = len(next(iter(feeds.values())))
    for start in range(0, total, BATCH):
        yield start, {n: a[start : start + BATCH] for n, a in feeds.items()}


def nncf_int8_with_defaults(export: Path, calibration: dict[str, np.ndarray], out: Path) -> Path:
    """`nncf.quantize` on the ONNX export with nothing but the calibration data, one sample
    per item (its default subset of 300 samples at most): what its quick start does."""
    import nncf
    import onnx

    logging.getLogger("nncf").setLevel(logging.ERROR)
    total = len(next(iter(calibration.values())))
    items = [{n: a[i : i + 1] for n, a in calibration.items()} for i in range(total)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        quantized = nncf.quantize(onnx.load(str(export)), nncf.Dataset(items))
    onnx.save(quantized, str(out))
    return out


def openvino_peers(
    export: Path,
    eval_data: Path,
    calibration_data: Path,
    scratch: Path,
    limits: Limits,
    metric: str | None,
    budget: TimingBudget,
) -> dict[str, RuntimeRow]:
    """The two OpenVINO peers, measured at batch 1 and at the throughput batch (OpenVINO's
    throughput hint, as the tool's own OpenVINO rows are), and judged against `limits`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(export), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds, labels = _arrays(eval_data, names)
    reference = {start: session.run(None, batch) for start, batch in _batches(feeds)}
    calibration, _ = _arrays(calibration_data, names)
    scratch.mkdir(parents=True, exist_ok=True)
    artifacts = {
        DEFAULTS: export,
        NNCF_DEFAULTS: nncf_int8_with_defaults(export, calibration, scratch / "nncf_int8.onnx"),
    }
    peers = {}
    for label, artifact in artifacts.items():
        runtime, settings = OpenVinoRuntime(), OpenVinoSettings.defaults()
        measurements = measure_model(
            runtime,
            artifact,
            CPU,
            rows(feeds, 1),
            rows(feeds, BATCH),
            settings,
            budget,
            model_size_mb(artifact),
        )
        opened = runtime.open(artifact, CPU, settings)
        tally = FidelityTally(metric)
        for start, batch in _batches(feeds):
            got = opened.run(batch)
            tally.add(
                reference[start], got, None if labels is None else labels[start : start + BATCH]
            )
        fidelity = tally.result()
        key = hashlib.sha256(f"{artifact}:{label}".encode()).hexdigest()[:16]
        row = RuntimeRow(key, "", label, settings.__dict__, runtime="openvino")
        row.record(measurements, fidelity, tolerance_verdict(fidelity, limits))
        peers[label] = row
    return peers
