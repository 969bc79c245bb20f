"""The stored evaluation set records how long the original took over it, and the run's
measurement time limit grows with that for slow models."""

import time

import numpy as np

from optimize.data.eval_store import write_eval_store
from optimize.measure.conditions import REFERENCE_MULTIPLE, unit_time_limit


def test_the_time_the_original_took_is_kept_and_scales_the_time_limit(tmp_path):
    def slow_reference(feeds):
        time.sleep(0.05)
        return [feeds["x"] * 2]

    batches = [({"x": np.ones((8, 3), np.float32)}, None)] * 4
    store = write_eval_store(tmp_path / "eval", batches, 8, slow_reference)
    assert store.batch_count == 4 and 0.2 <= store.reference_s < 2.0
    assert unit_time_limit(600.0, store.reference_s) == 600.0
    # A model whose pass over the set took the original 30 s gets far more than 600 s.
    assert unit_time_limit(600.0, 30.0) == REFERENCE_MULTIPLE * 30.0 > 600.0
