"""The timing loop and the ONNX Runtime profile of a real model."""

import time
from dataclasses import replace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hardware.model_files import model_size_mb
from hardware.profile import (
    TimingBudget,
    fastest_of_sweep,
    measure_model,
    time_interleaved,
    time_runs,
)
from hardware.runtimes.onnxruntime import OnnxRuntime
from hardware.session import SessionSettings
from hardware.targets import Target
from optimize.measure.worker import batch_worth_timing


def _mlp(path, hidden=64):
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((16, hidden)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, 4)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w2"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def _mlp_feeds():
    """Inputs of the MLP at batch 1 and at a throughput batch of 8."""
    rng = np.random.default_rng(1)
    return (
        {"x": rng.standard_normal((1, 16)).astype(np.float32)},
        {"x": rng.standard_normal((8, 16)).astype(np.float32)},
    )


def test_time_runs_adapts_run_count_to_speed():
    budget = TimingBudget(warmup_runs=2, warmup_s=0.0, measure_s=0.2, min_runs=5, max_runs=500)
    slow = time_runs(lambda: time.sleep(0.02), budget)
    fast = time_runs(lambda: sum(range(100)), budget)
    assert 5 <= slow.runs <= 15
    assert fast.runs == 500
    assert 19 <= slow.p50_ms <= 40
    assert slow.min_ms <= slow.p50_ms <= slow.p90_ms <= slow.p99_ms


def test_synchronize_is_inside_the_timed_region():
    budget = TimingBudget(warmup_runs=1, warmup_s=0.0, measure_s=0.05, min_runs=5, max_runs=5)
    timing = time_runs(lambda: None, budget, synchronize=lambda: time.sleep(0.01))
    assert timing.p50_ms >= 9


def test_measure_model_reports_every_figure(tmp_path):
    path = _mlp(tmp_path / "mlp.onnx")
    feeds, batch = _mlp_feeds()
    budget = TimingBudget(measure_s=0.1, warmup_s=0.02)
    size = model_size_mb(path)
    m = measure_model(
        OnnxRuntime(), path, Target("cpu"), feeds, batch, SessionSettings(), budget, size
    )
    assert m.providers == ["CPUExecutionProvider"]
    assert m.latency.runs >= budget.min_runs
    assert 0 < m.latency.p50_ms < 50
    assert m.throughput_batch == 8
    assert m.throughput_per_s == 8 / (m.throughput_timing.p50_ms / 1e3)
    assert m.startup_ms > 0
    assert abs(m.size_mb - path.stat().st_size / 2**20) < 1e-9
    assert m.peak_memory_mb > 0
    data = m.to_dict()
    assert data["latency"]["spread"] >= 0
    assert data["settings"]["inter_op_threads"] == 1


def test_a_setting_clearly_slower_at_batch_one_is_not_timed_at_the_throughput_batch(tmp_path):
    path = _mlp(tmp_path / "mlp.onnx")
    feeds, batch = _mlp_feeds()
    budget = TimingBudget(measure_s=0.1, warmup_s=0.02)

    def measure(threads, sweep):
        settings = SessionSettings(intra_op_threads=threads)
        return measure_model(
            OnnxRuntime(),
            path,
            Target("cpu"),
            feeds,
            batch,
            settings,
            budget,
            0.0,
            batch_worth_timing(sweep),
        )

    first = measure(1, [])
    assert first.throughput_batch == 8
    # Another setting, against a fastest so far made ten times faster than it can be.
    fastest = replace(first, latency=replace(first.latency, p50_ms=first.latency.p50_ms / 10))
    second = measure(2, [fastest])
    assert second.throughput_batch == 1 and second.throughput_timing == second.latency
    # Against a fastest so far made ten times slower, it may become the fastest: timed.
    slowest = replace(first, latency=replace(first.latency, p50_ms=first.latency.p50_ms * 10))
    assert measure(2, [slowest]).throughput_batch == 8
    # The sweep reports throughput only at the batch its fastest was timed at.
    swept = fastest_of_sweep([fastest, second])
    assert [s["throughput_per_s"] for s in swept.thread_sweep] == [fastest.throughput_per_s, None]


def test_model_size_counts_external_data(tmp_path):
    path = _mlp(tmp_path / "mlp.onnx", hidden=512)
    model = onnx.load(path)
    external = tmp_path / "ext.onnx"
    onnx.save_model(
        model, external, save_as_external_data=True, location="ext.onnx.data", size_threshold=0
    )
    total = external.stat().st_size + (tmp_path / "ext.onnx.data").stat().st_size
    assert abs(model_size_mb(external) - total / 2**20) < 1e-9
    assert model_size_mb(external) > 0.03


def test_time_runs_stops_early_when_the_median_is_known():
    budget = TimingBudget(warmup_runs=2, warmup_s=0.0, measure_s=0.4, max_runs=10**6)
    start = time.perf_counter()
    timing = time_runs(lambda: sum(range(200)), budget)
    assert timing.stopped == "stable"
    assert timing.median_error <= budget.stable_error
    assert time.perf_counter() - start < budget.measure_s


def test_time_runs_goes_longer_when_noisy():
    rng = np.random.default_rng(0)
    budget = TimingBudget(warmup_runs=2, warmup_s=0.0, measure_s=0.2, max_runs=10**6)
    start = time.perf_counter()
    timing = time_runs(lambda: time.sleep(rng.uniform(0.0005, 0.003)), budget)
    elapsed = time.perf_counter() - start
    assert timing.stopped == "noisy"
    assert timing.median_error > budget.noisy_error
    assert elapsed >= budget.measure_s * budget.noisy_factor


def test_interleaving_spreads_a_slow_spell_over_every_contender():
    # The machine is three times slower for the first 0.3 s, as when another job runs:
    # timed one after the other, the first of two identical runs takes all of it.
    start = time.perf_counter()

    def identical():
        slow = time.perf_counter() - start < 0.3
        time.sleep(0.003 if slow else 0.001)

    budget = TimingBudget(
        warmup_runs=1, warmup_s=0.0, measure_s=0.3, max_runs=10**6, stable_error=0.0
    )
    first, second = time_runs(identical, budget), time_runs(identical, budget)
    assert first.mean_ms > 1.5 * second.mean_ms
    start = time.perf_counter()
    a, b = time_interleaved([(identical, None), (identical, None)], budget, rounds=9)
    assert 0.75 < a.timing.mean_ms / b.timing.mean_ms < 1.33
    assert len(a.round_medians_ms) == len(b.round_medians_ms) == 9


def test_a_child_reports_its_own_peak_memory_not_its_parents():
    import subprocess
    import sys

    from hardware.memory import peak_rss_mb

    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # touched, so resident
    code = "from hardware.memory import peak_rss_mb; print(peak_rss_mb())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert peak_rss_mb() > 400
    assert float(child.stdout) < 200, "the child's peak includes its parent's"
