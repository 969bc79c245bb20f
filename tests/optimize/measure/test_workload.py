"""What every measurement shares: a full timing shortened to fit what is left of a budget
(by halves, so that a re-run under the same budget finds the figures it took), and
judging over the evaluation set, stopped once the limit is out of reach."""

import dataclasses

import numpy as np
from figures import measured_variant

from hardware.profile import TimingBudget
from hardware.targets import Target
from optimize.config.limits import Limits
from optimize.measure.cache import load_result, store_figures
from optimize.measure.judging import judged_in_part
from optimize.measure.verdicts import tolerance_verdict
from optimize.measure.workload import MOST_HALVINGS, Workload, fidelity_over, halvings_to_fit


def test_a_timing_that_fits_is_left_whole_and_a_tight_one_is_halved_within_bounds():
    budget = TimingBudget(warmup_s=0.2, measure_s=1.0)
    # Eight figures of about 1.7 s each and a fresh process: about 16 s.
    assert halvings_to_fit(budget, 60.0, 8) == 0
    assert halvings_to_fit(budget, 10.0, 8) == 1
    assert halvings_to_fit(budget, 5.0, 8) == 3
    assert halvings_to_fit(budget, 0.0, 8) == MOST_HALVINGS


def _linear_store(tmp_path, weight):
    """32 unlabelled rows in batches of 8, the original being `x @ weight`."""
    from optimize.data.eval_store import write_eval_store

    x = np.random.default_rng(0).standard_normal((32, 16)).astype(np.float32)
    return write_eval_store(tmp_path / "eval", [({"x": x}, None)], 8, lambda b: [b["x"] @ weight])


def test_judging_stops_once_the_mean_cosine_cannot_reach_the_limit(tmp_path):
    weight = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    store = _linear_store(tmp_path, weight)
    workload = Workload(Target("cpu"), store, {}, 1, 1, 8, TimingBudget())
    noisy = weight + np.random.default_rng(2).standard_normal(weight.shape).astype(np.float32)

    def faithful(feeds):
        return [feeds["x"] @ weight]

    def far_off(feeds):
        return [feeds["x"] @ noisy]

    # Within the limit, every sample is judged; far off, one batch settles it.
    assert fidelity_over(faithful, workload, 0.999).samples == 32
    judged = fidelity_over(far_off, workload, 0.999)
    assert judged.samples == 8 and judged.short_of(0.999, 32)
    # Without a limit, and under a limit it meets, every sample is judged.
    assert fidelity_over(far_off, workload).samples == 32
    assert fidelity_over(far_off, workload, -1.0).samples == 32
    verdict = tolerance_verdict(judged, Limits(min_cosine=0.999), 32)
    assert verdict.endswith("on the first 8 of 32 samples, which the rest could not lift")
    # Stored, that judgement stands under the same limit, and is judged again under a looser.
    store_figures(tmp_path / "figures.json", "key", measured_variant("v", 1.0).measurements, judged)
    stored = load_result(tmp_path / "figures.json", "key")
    assert not judged_in_part(stored, Limits(min_cosine=0.999), store)
    assert judged_in_part(stored, Limits(min_cosine=0.5), store)
    # Labelled data is judged by its metric, whole: no stored judgement of it is partial.
    labelled = dataclasses.replace(store, labelled=True)
    assert not judged_in_part(stored, Limits(min_cosine=0.5), labelled)
