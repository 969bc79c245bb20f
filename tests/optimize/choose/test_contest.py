"""The head-to-head: contenders, the interleaved race on real ONNX models, and the decision."""

import dataclasses
import shutil
from pathlib import Path

import numpy as np
from figures import measured_variant
from onnx import helper

from hardware.profile import TimingBudget
from hardware.runtimes.base import RuntimeName
from hardware.runtimes.openvino import OpenVinoSettings
from hardware.session import SessionSettings
from hardware.targets import Target
from optimize.choose.contest import CLEAR_WINS, contenders, decide, run_contest
from optimize.choose.select import pick
from optimize.data.eval_store import EvalStore
from optimize.measure.artifacts import ModelFile
from optimize.measure.worker import MeasureJob
from optimize.measure.workload import Workload


def _mlp(save_float_graph, path: Path, hidden: int, layers: int) -> Path:
    """A float MLP over 64 features: `layers` square MatMuls of width `hidden`."""
    rng = np.random.default_rng(0)
    nodes, weights, prev = [], {}, "x"
    widths = [64] + [hidden] * layers + [8]
    for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False)):
        weights[f"w{i}"] = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    return save_float_graph(path, nodes, weights, 64, 8)


def _variant(name: str, path: Path | None, p50: float, cosine: float, size: float, spread=0.02):
    return measured_variant(name, p50, cosine, spread=spread, size=size, path=path)


def _workload(tmp_path: Path, budget: TimingBudget) -> Workload:
    feeds = {"x": np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)}
    store = EvalStore(tmp_path / "eval", 0, 0, False, "")
    return Workload(Target("cpu"), store, feeds, 1, 4, 4, budget)


def _jobs(variants, workload: Workload, setting=SessionSettings()) -> dict[str, MeasureJob]:
    """Each variant's job as the measurer keeps it: its file on its runtime."""
    return {v.id: MeasureJob(v.runtime, ModelFile(v.path), (setting,), workload) for v in variants}


def test_contenders_are_the_close_ones_within_tolerance():
    fastest = _variant("a", None, 1.0, 1.0, 1.0)
    close = _variant("b", None, 1.2, 1.0, 1.0)
    far = _variant("c", None, 2.0, 1.0, 1.0)
    outside = _variant("d", None, 0.5, 0.9, 1.0)
    outside.verdict = "mean cosine 0.9 < 0.999"
    torch_row = _variant("e", None, 1.05, 1.0, 1.0)
    torch_row.runtime = "torch"
    assert [v.id for v in contenders([far, outside, close, torch_row, fastest])] == ["a", "b"]


def test_one_set_to_race_on_a_faster_screening_is_not_the_one_the_field_is_held_to():
    # The leader's full timing came out slower than the racer's screening: they still race.
    leader = _variant("leader", None, 1.4, 1.0, 1.0)
    racer = _variant("racer", None, 1.0, 1.0, 1.0)
    racer.timing = "race"
    assert [v.id for v in contenders([leader, racer])] == ["racer", "leader"]


def test_the_race_is_run_in_the_runtime_of_the_fastest():
    onnxruntime = [_variant(n, None, p50, 1.0, 1.0) for n, p50 in (("a", 1.0), ("b", 1.02))]
    openvino = [_variant(n, None, p50, 1.0, 1.0) for n, p50 in (("c", 0.8), ("d", 0.82))]
    for row in openvino:
        row.runtime = RuntimeName.OPENVINO
    # One runtime's sessions race: another's thread pools would contend with them.
    assert [v.id for v in contenders(onnxruntime + openvino)] == ["c", "d"]
    # One set to race decides the runtime, though another's leader came out faster.
    onnxruntime[1].timing = "race"
    assert [v.id for v in contenders(onnxruntime + openvino)] == ["a", "b"]


def test_race_on_real_models_finds_the_clearly_faster(tmp_path, save_float_graph):
    light = _mlp(save_float_graph, tmp_path / "light.onnx", hidden=16, layers=1)
    heavy = _mlp(save_float_graph, tmp_path / "heavy.onnx", hidden=512, layers=6)
    # Their separate figures (made up) claim a near tie; the race times them for real.
    a = _variant("light", light, 1.00, 1.0, 1.0)
    b = _variant("heavy", heavy, 0.98, 1.0, 1.0)
    budget = TimingBudget(warmup_runs=2, warmup_s=0.0, measure_s=0.2)
    workload = _workload(tmp_path, budget)
    contest = run_contest([a, b], _jobs([a, b], workload), workload, timeout_s=120)
    assert contest.fastest == contest.winner == "light"
    loser = contest.entry("heavy")
    assert loser["rounds_beaten_by_fastest"] >= CLEAR_WINS and not loser["tie"]
    assert loser["slower_by"] > 1.0
    assert len(loser["round_medians_ms"]) == contest.rounds
    assert pick([a, b], contest) is a


def test_openvino_contenders_race_in_openvino(tmp_path, save_float_graph):
    light = _mlp(save_float_graph, tmp_path / "light.onnx", hidden=16, layers=1)
    heavy = _mlp(save_float_graph, tmp_path / "heavy.onnx", hidden=512, layers=6)
    a = _variant("light", light, 1.00, 1.0, 1.0)
    b = _variant("heavy", heavy, 0.98, 1.0, 1.0)
    setting = OpenVinoSettings(threads=1, precision="f32")
    for row in (a, b):
        row.runtime = RuntimeName.OPENVINO
        row.measurements = dataclasses.replace(
            row.measurements, settings=dataclasses.asdict(setting)
        )
    budget = TimingBudget(warmup_runs=2, warmup_s=0.0, measure_s=0.2)
    workload = _workload(tmp_path, budget)
    jobs = _jobs([a, b], workload, setting)
    contest = run_contest([a, b], jobs, workload, timeout_s=120)
    assert contest.fastest == contest.winner == "light"
    assert contest.entry("heavy")["rounds_beaten_by_fastest"] >= CLEAR_WINS


def test_identical_files_tie_and_the_better_quality_wins(tmp_path, save_float_graph):
    model = _mlp(save_float_graph, tmp_path / "a.onnx", hidden=64, layers=2)
    copy = shutil.copy(model, tmp_path / "b.onnx")
    worse = _variant("worse", model, 1.00, 0.9995, 1.0)
    better = _variant("better", Path(copy), 1.01, 0.99999, 1.0)
    figures = [
        {"p50_ms": 1.00, "spread": 0.02, "runs": 90, "round_medians_ms": [1.0, 1.1] * 4 + [1.0]},
        {"p50_ms": 1.01, "spread": 0.02, "runs": 90, "round_medians_ms": [1.05] * 9},
    ]
    contest = decide([worse, better], figures, rounds=9)
    assert contest.fastest == "worse" and contest.winner == "better"
    assert pick([worse, better], contest) is better
    # A loss in every round is not a tie, whatever the quality.
    figures[1]["round_medians_ms"] = [1.2] * 9
    assert decide([worse, better], figures, rounds=9).winner == "worse"


def test_no_race_without_two_close_contenders(tmp_path):
    alone = _variant("a", tmp_path / "a.onnx", 1.0, 1.0, 1.0)
    far = _variant("b", tmp_path / "b.onnx", 3.0, 1.0, 1.0)
    budget = TimingBudget(measure_s=0.05)
    workload = _workload(tmp_path, budget)
    assert run_contest([alone, far], _jobs([alone, far], workload), workload, timeout_s=60) is None
    assert pick([alone, far], None) is alone


def test_contenders_stop_where_their_sessions_would_not_fit_in_memory():
    fastest = _variant("a", None, 1.0, 1.0, 1.0)
    huge = _variant("b", None, 1.1, 1.0, 10**9)  # a petabyte of weights
    after = _variant("c", None, 1.2, 1.0, 1.0)
    assert [v.id for v in contenders([fastest, huge, after])] == ["a"]
