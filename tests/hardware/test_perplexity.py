"""Perplexity on fixed windows computed by the runtime itself, and greedy agreement with a
reference continuation."""

import math

import numpy as np
import pytest

from hardware.perplexity import greedy_agreement, perplexity, token_windows


class _Uniform:
    """A model that spreads its probability evenly over `vocab` tokens."""

    def __init__(self, vocab):
        self.vocab = vocab

    def token_logprobs(self, ids):
        return np.full(len(ids) - 1, -math.log(self.vocab))


def test_windows_are_fixed_consecutive_and_whole():
    assert token_windows(list(range(10)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert token_windows(list(range(10)), 3, count=2) == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="do not fill one window"):
        token_windows([1, 2], 4)


def test_a_uniform_model_is_as_perplexed_as_its_vocabulary():
    result = perplexity(_Uniform(50), token_windows(list(range(40)), 10))
    assert result.perplexity == pytest.approx(50)
    assert (result.tokens, result.windows) == (36, 4)


def test_perplexity_refuses_non_finite_scores():
    class Broken(_Uniform):
        def token_logprobs(self, ids):
            return np.full(len(ids) - 1, np.nan)

    with pytest.raises(ValueError, match="non-finite"):
        perplexity(Broken(5), [[1, 2, 3]])


def test_greedy_agreement_finds_the_first_divergence():
    reference = [[1, 2, 3, 4], [5, 6, 7, 8]]
    same = greedy_agreement(reference, reference, head=4)
    assert (same.mean_first_divergence, same.identical_share) == (4.0, 1.0)
    drifted = greedy_agreement([[1, 2, 9, 4], [0, 6, 7, 8]], reference, head=4)
    assert drifted.mean_first_divergence == 1.0  # positions 2 and 0
    assert drifted.identical_share == 6 / 8
    with pytest.raises(ValueError, match="one candidate continuation per reference"):
        greedy_agreement([[1]], reference)
