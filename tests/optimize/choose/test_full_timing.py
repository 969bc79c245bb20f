"""Full timing sized by what can still change the pick: two ONNX Runtime contenders
within noise of each other are not each swept; the slower races the faster head to head
under the setting the faster was swept to, and the pick is always timed in full. Another
runtime's second contender is timed under the setting its first was fastest with."""

import dataclasses
from types import SimpleNamespace

from copies import AddsNote
from figures import measured_variant

from hardware.runtimes.base import RuntimeName
from hardware.runtimes.openvino import OpenVinoSettings
from optimize.api import run
from optimize.choose.full_timing import follow_leader
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from optimize.measure.worker import MeasureJob

# Runs of the same three files at most, until their screening ties.
TIE_TRIES = 3


def test_a_tie_is_raced_head_to_head_rather_than_swept_twice(deep_linear_onnx, tmp_path):
    # Two files of the same speed, screened one after the other. Identical files can still
    # screen beyond noise of each other (a session draws its speed, a neighbour may be busy):
    # the run is taken again, a few times at most, until the screening ties.
    for attempt in range(TIE_TRIES):
        results = run(_copies_recipe(deep_linear_onnx, tmp_path / f"out{attempt}"))
        if results.contest is not None:
            break
    assert results.contest is not None, results.warnings
    ours = [v for v in results.variants if v.runtime == "onnxruntime"]
    # None outside the limits (one screened slower by chance is left unjudged, not outside).
    assert len(ours) == 3 and not any(v.outside_limits for v in ours)
    assert results.pick.timing == "full"
    entries = {e["id"] for e in results.contest.entries}
    # The tie was settled head to head: two copies at least ran in it (a third may have
    # screened slower, twice, and been left out).
    assert len([v for v in ours if v.id in entries]) >= 2
    swept = [v for v in ours if v.timing == "full"]
    raced = [v for v in ours if v.timing == "race"]
    # One was swept; the others raced it, and one was timed in full only if it won.
    assert len(swept) == 1 or (len(swept) == 2 and results.contest.winner == results.pick.id)
    assert {v.id for v in raced} <= entries
    assert all("raced it head to head" in v.not_timed_further for v in raced)
    report = (tmp_path / f"out{attempt}" / "report.md").read_text()
    assert not raced or "raced it head to head" in report


def _copies_recipe(model, out):
    """A run of `model` and two copies of it, timed briefly at one thread in ONNX Runtime."""
    return Recipe(
        model=model,
        out=out,
        chains=[Chain((AddsNote(), AddsNote()), "the same model twice more")],
        builtin=False,
        measure={
            "seconds": 0.2,
            "screen_seconds": 0.2,
            "threads": [1],
            "torch_runtimes": False,
            "onnx_runtimes": [],
        },
        search={"fallback": False},
    )


def test_another_contender_of_a_runtime_is_timed_under_the_setting_the_first_was_fastest_with():
    f32 = [OpenVinoSettings(threads=n, precision="f32") for n in (2, 1)]
    bf16 = [OpenVinoSettings(threads=n, precision="bf16") for n in (2, 1)]
    leader, follower = measured_variant("lead", 1.0), measured_variant("follow", 1.05)
    swept = dataclasses.asdict(f32[1])
    leader.measurements = dataclasses.replace(leader.measurements, settings=swept)
    jobs = {
        leader.id: MeasureJob(RuntimeName.OPENVINO, None, tuple(f32), None),
        follower.id: MeasureJob(RuntimeName.OPENVINO, None, tuple(bf16), None),
    }
    follow_leader(follower, leader, SimpleNamespace(jobs=jobs))
    # Its own precision, at the thread count the leader's sweep found fastest.
    assert jobs[follower.id].settings == (bf16[1],)
