"""Fidelity figures and the tolerance rule on known outputs."""

import numpy as np
import pytest

from optimize.config.limits import Limits
from optimize.measure.verdicts import tolerance_verdict
from optimize.records.fidelity import Fidelity, compare_outputs


def test_identical_outputs_are_perfect():
    ref = [np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], dtype=np.float32)]
    fid = compare_outputs(ref, [r.copy() for r in ref], labels=np.array([2, 1]))
    assert fid.max_abs_error == 0
    assert fid.mean_cosine == pytest.approx(1.0)
    assert fid.top1_agreement == 1.0
    assert fid.accuracy == fid.reference_accuracy == 1.0
    assert fid.accuracy_drop_points == 0
    assert tolerance_verdict(fid, Limits()) is None


def test_flipped_prediction_lowers_agreement_and_accuracy():
    ref = [np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)]
    cand = [ref[0].copy()]
    cand[0][0] = [1.0, 0.0]
    fid = compare_outputs(ref, cand, labels=np.array([1, 0, 1, 0]))
    assert fid.top1_agreement == 0.75
    assert fid.accuracy_drop_points == pytest.approx(25.0)
    assert fid.max_abs_error == 1.0
    assert "accuracy drop 25.00" in tolerance_verdict(fid, Limits())


def test_with_labels_accuracy_decides_not_cosine():
    ref = [np.array([[0.0, 2.0], [2.0, 0.0]], dtype=np.float32)]
    cand = [np.array([[0.0, 1.0], [1.5, 0.5]], dtype=np.float32)]
    fid = compare_outputs(ref, cand, labels=np.array([1, 0]))
    assert fid.mean_cosine < 0.999
    assert tolerance_verdict(fid, Limits()) is None
    assert "mean cosine" in tolerance_verdict(compare_outputs(ref, cand), Limits())


def test_cosine_rule_and_nonfinite_outputs():
    ref = [np.ones((2, 3), dtype=np.float32)]
    scaled = compare_outputs(ref, [ref[0] * 3])
    assert scaled.mean_cosine == pytest.approx(1.0)
    assert scaled.max_rel_error == pytest.approx(2.0)
    noisy = compare_outputs(ref, [np.array([[1, 1, 1], [1, -1, 0]], dtype=np.float32)])
    assert noisy.min_cosine == pytest.approx(0.0)
    assert "mean cosine" in tolerance_verdict(noisy, Limits())
    broken = compare_outputs(ref, [np.array([[1, np.nan, 1], [1, 1, np.inf]], np.float32)])
    assert broken.nonfinite_outputs == 2
    assert "NaN/inf" in tolerance_verdict(broken, Limits())


def test_fidelity_round_trips_through_plain_data():
    fid = compare_outputs([np.eye(3, dtype=np.float32)], [np.eye(3, dtype=np.float32)])
    assert Fidelity.from_dict(fid.to_dict()) == fid


def test_output_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape differs"):
        compare_outputs([np.zeros((2, 3))], [np.zeros((2, 4))])


def test_relative_accuracy_drop_is_in_percent_of_the_original():
    ref = [np.eye(4, dtype=np.float32)]
    cand = [np.eye(4, dtype=np.float32)]
    cand[0][0] = [0, 1, 0, 0]
    labels = np.array([0, 1, 2, 0])  # the original gets 3 of 4 right, the variant 2 of 4
    fid = compare_outputs(ref, cand, labels)
    assert fid.accuracy_drop_points == pytest.approx(25.0)
    within_points = Limits(max_accuracy_drop=30.0)
    assert tolerance_verdict(fid, within_points) is None
    relative = Limits(max_accuracy_drop=30.0, max_relative_accuracy_drop=30.0)
    assert "33.33% of the original's > 30.0%" in tolerance_verdict(fid, relative)


def test_close_calls_that_flip_fail_top1_agreement_though_the_cosine_passes():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.0, 0.4, (100, 10)).astype(np.float32)
    ref[:, 3], ref[:, 7] = 1.0, 0.999  # every sample a close call between classes 3 and 7
    cand = ref.copy()
    cand[:3, 7] = 1.001  # three of them flip
    fid = compare_outputs([ref], [cand])
    assert fid.mean_cosine > 0.9999 and fid.top1_agreement == pytest.approx(0.97)
    assert (
        tolerance_verdict(fid, Limits(min_top1_agreement=0.99)) == "top-1 agreement 0.9700 < 0.99"
    )
    assert tolerance_verdict(fid, Limits(min_top1_agreement=0.95)) is None
    # Off by default: an embedding has the shape of class scores.
    assert tolerance_verdict(fid, Limits()) is None


def test_token_outputs_are_compared_for_equality_beside_perplexity():
    logprobs = np.log(np.full((2, 5), 0.5, dtype=np.float32))
    worse = np.log(np.full((2, 5), 0.4, dtype=np.float32))
    tokens = np.array([[3, 4, 5, 6], [7, 8, 9, 10]])
    drifted = np.array([[3, 4, 0, 0], [7, 8, 9, 10]])
    windows = np.zeros((2, 5), dtype=np.int64)
    fidelity = compare_outputs([logprobs, tokens], [worse, drifted], windows, "perplexity")
    assert fidelity.metric == "perplexity" and fidelity.higher_is_better is False
    assert fidelity.reference_score == pytest.approx(2.0) and fidelity.score == pytest.approx(2.5)
    assert fidelity.identical_share == pytest.approx(6 / 8)
    # The first row differs at position 2, the second not at all (its length, 4).
    assert fidelity.mean_first_divergence == pytest.approx(3.0)
    # Cosine is over the float outputs alone: the token ids do not enter it.
    assert fidelity.mean_cosine == pytest.approx(1.0)
    verdict = tolerance_verdict(fidelity, Limits(max_perplexity_increase=5))
    assert verdict == "perplexity +25.00% > +5.0%"
    assert tolerance_verdict(fidelity, Limits(max_perplexity_increase=30)) is None
