"""The one measuring worker on real runtimes: an ONNX file on ONNX Runtime and OpenVINO,
and the PyTorch source loaded again, each timed and judged on the same workload."""

import numpy as np
import pytest
from figures import QUICK_MEASURE

from hardware.runtimes.base import RuntimeName
from hardware.runtimes.openvino import OpenVinoRuntime
from hardware.runtimes.pytorch import TorchSettings
from hardware.session import SessionSettings
from hardware.targets import Target
from optimize.config.sections import MeasureSection
from optimize.data.eval_store import write_eval_store
from optimize.data.inputs import iter_batches
from optimize.measure.artifacts import ModelFile, TorchSource
from optimize.measure.worker import MeasureJob, measure_candidate, profile_candidate
from optimize.measure.workload import Workload
from optimize.source.load import SourceSpec, load_source

CPU = Target("cpu")


@pytest.fixture
def workload(tmp_path, digits, digits_files):
    """The digits set with the original PyTorch model's outputs as the reference."""
    source = load_source(digits_files / "cnn.pt2")
    feeds = {"x": digits.test_x[:96]}
    labels = digits.test_y[:96]
    batches = [(b, labels[i * 32 : (i + 1) * 32]) for i, b in enumerate(iter_batches(feeds, 32))]

    def reference(batch):
        import torch

        with torch.no_grad():
            return [source.model.module()(torch.from_numpy(batch["x"])).numpy()]

    store = write_eval_store(tmp_path / "eval", batches, 32, reference, False)
    budget = MeasureSection(**QUICK_MEASURE).budget()
    return Workload(CPU, store, feeds, 1, 8, 32, budget)


def _settings(runtime: RuntimeName) -> tuple:
    if runtime == RuntimeName.ONNXRUNTIME:
        return (SessionSettings(intra_op_threads=1), SessionSettings(intra_op_threads=2))
    if runtime == RuntimeName.OPENVINO:
        return tuple(OpenVinoRuntime().settings(CPU, [], (1,))[:1])
    return (TorchSettings(threads=1), TorchSettings(threads=2))


@pytest.mark.parametrize(
    "runtime", [RuntimeName.ONNXRUNTIME, RuntimeName.OPENVINO, RuntimeName.TORCH]
)
def test_one_worker_measures_and_judges_every_runtime(
    runtime, workload, digits_cnn_onnx, digits_files
):
    if runtime == RuntimeName.OPENVINO and OpenVinoRuntime().unavailable(CPU):
        pytest.skip(OpenVinoRuntime().unavailable(CPU))
    if runtime == RuntimeName.TORCH:
        artifact = TorchSource(SourceSpec(digits_files / "cnn.pt2"))
    else:
        artifact = ModelFile(digits_cnn_onnx)
    settings = _settings(runtime)
    measured, fidelity = measure_candidate(MeasureJob(runtime, artifact, settings, workload))
    assert measured.latency.p50_ms > 0 and measured.throughput_batch == 8
    assert measured.size_mb > 0 and measured.providers
    # Every setting was tried, and the fastest kept.
    assert len(measured.thread_sweep) >= len(settings)
    assert measured.latency.p50_ms == min(s["p50_ms"] for s in measured.thread_sweep)
    assert fidelity.samples == 96 and fidelity.top1_agreement >= 0.98
    timed_only = MeasureJob(runtime, artifact, settings[:1], workload, fidelity=False)
    assert measure_candidate(timed_only)[1] is None


def test_profiles_come_from_the_candidates_own_runtime(workload, digits_cnn_onnx, digits_files):
    onnx = MeasureJob(
        RuntimeName.ONNXRUNTIME, ModelFile(digits_cnn_onnx), (SessionSettings(),), workload
    )
    assert "Conv" in {row["op_type"] for row in profile_candidate(onnx)}
    torch_job = MeasureJob(
        RuntimeName.TORCH,
        TorchSource(SourceSpec(digits_files / "cnn.pt2")),
        (TorchSettings(threads=1),),
        workload,
    )
    assert all(row["op_type"].startswith("aten::") for row in profile_candidate(torch_job))
    openvino = MeasureJob(
        RuntimeName.OPENVINO, ModelFile(digits_cnn_onnx), _settings(RuntimeName.OPENVINO), workload
    )
    assert profile_candidate(openvino) is None


def test_a_torch_source_takes_its_inputs_through_the_preprocessing(digits_files):
    loaded = TorchSource(SourceSpec(digits_files / "cnn.pt2")).load()
    feeds = {"x": np.zeros((2, 1, 8, 8), np.float32), "extra": np.zeros(2)}
    assert list(loaded.feeds(feeds)) == ["x"] and loaded.size_mb > 0


def test_a_screening_clearly_slower_than_the_bar_is_not_judged_and_says_why(
    workload, digits_cnn_onnx
):
    from figures import measured_variant

    from optimize.measure.judging import JudgingBar

    artifact = ModelFile(digits_cnn_onnx)
    job = MeasureJob(
        RuntimeName.ONNXRUNTIME, artifact, _settings(RuntimeName.ONNXRUNTIME), workload
    )
    bar = JudgingBar()
    assert bar.near() is None  # nothing within the limits yet: every screening is judged
    # A candidate within the limits a thousand times faster than the CNN can run.
    bar.note(measured_variant("fast", 1e-6))
    measured, fidelity = measure_candidate(job.screening(workload, bar.near()))
    assert fidelity is None
    slow = measured_variant("slow", measured.latency.p50_ms)
    slow.record(measured, None, None)
    bar.note(slow)
    assert not slow.within_tolerance and not slow.outside_limits
    assert slow.within_tolerance_if_judged is None
    assert "cannot win; its outputs were not judged" in slow.not_timed_further
    # Near the bar (within its margin), or with the bar off, the outputs are judged.
    near = (measured.latency.p50_ms * 2, 0.1)
    assert measure_candidate(job.screening(workload, near))[1].samples == 96
    assert JudgingBar(enabled=False, fastest=bar.fastest).near() is None
    assert measure_candidate(job.screening(workload, None))[1].samples == 96


def test_a_compiled_model_is_judged_at_the_batch_it_was_compiled_for(workload, digits_files):
    import dataclasses

    import torch

    # As screening runs it: timed at batch 1 alone, then judged over 96 rows.
    screening = dataclasses.replace(workload, throughput_batch=1)
    compiled = (TorchSettings("compile", threads=1),)
    job = MeasureJob(
        RuntimeName.TORCH, TorchSource(SourceSpec(digits_files / "cnn.pt2")), compiled, screening
    )
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    measured, fidelity = measure_candidate(job)
    assert fidelity.samples == 96 and fidelity.top1_agreement >= 0.98
    # The evaluation batch of 32 would have compiled the model once more.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
