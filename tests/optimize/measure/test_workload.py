"""A full timing shortened to fit what is left of a budget: by halves, so that a re-run
under the same budget finds the figures it took."""

from hardware.profile import TimingBudget
from optimize.measure.workload import MOST_HALVINGS, halvings_to_fit


def test_a_timing_that_fits_is_left_whole_and_a_tight_one_is_halved_within_bounds():
    budget = TimingBudget(warmup_s=0.2, measure_s=1.0)
    # Eight figures of about 1.7 s each and a fresh process: about 16 s.
    assert halvings_to_fit(budget, 60.0, 8) == 0
    assert halvings_to_fit(budget, 10.0, 8) == 1
    assert halvings_to_fit(budget, 5.0, 8) == 3
    assert halvings_to_fit(budget, 0.0, 8) == MOST_HALVINGS
