"""The quality of a generative model, computed in the runtime that serves it: perplexity on
fixed windows of token ids, and agreement of its greedy output with a reference's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hardware.runtimes.generative import GenerativeModel

# Greedy agreement compares the first this many tokens of each continuation.
AGREEMENT_HEAD = 32


@dataclass(frozen=True)
class Perplexity:
    """exp of the mean negative log-likelihood over `tokens` predicted tokens in `windows`
    windows (each window's first token is context only)."""

    perplexity: float
    tokens: int
    windows: int


@dataclass(frozen=True)
class GreedyAgreement:
    """How a candidate's greedy continuations follow a reference's: the mean position of
    the first different token (the full length where none differs), and the share of
    identical tokens position by position in the first `head` tokens."""

    mean_first_divergence: float
    identical_share: float
    head: int
    prompts: int


def token_windows(ids: Sequence[int], length: int, count: int | None = None) -> list[list[int]]:
    """Consecutive, non-overlapping windows of `length` ids (the last partial one dropped),
    at most `count`: the same windows for every candidate make perplexities comparable."""
    if length < 2:
        raise ValueError(f"a perplexity window needs at least 2 tokens, not {length}")
    windows = [list(ids[i : i + length]) for i in range(0, len(ids) - length + 1, length)]
    if not windows:
        raise ValueError(f"{len(ids)} token ids do not fill one window of {length}")
    return windows[:count] if count else windows


def perplexity(model: GenerativeModel, windows: Sequence[Sequence[int]]) -> Perplexity:
    """Teacher-forced perplexity of `model` on `windows`, each window scored from an empty
    context by the runtime itself."""
    total_logprob, tokens = 0.0, 0
    for window in windows:
        logprobs = np.asarray(model.token_logprobs(window), dtype=np.float64)
        if not np.all(np.isfinite(logprobs)):
            raise ValueError(f"{type(model).__name__} produced non-finite log-probabilities")
        total_logprob += float(logprobs.sum())
        tokens += len(logprobs)
    return Perplexity(math.exp(-total_logprob / tokens), tokens, len(windows))


def greedy_continuations(
    model: GenerativeModel, prompts: Sequence[Sequence[int]], new_tokens: int = AGREEMENT_HEAD
) -> list[list[int]]:
    """The greedy continuation of each prompt, `new_tokens` long."""
    return [model.generate(list(prompt), new_tokens).tokens for prompt in prompts]


def greedy_agreement(
    candidate: Sequence[Sequence[int]],
    reference: Sequence[Sequence[int]],
    head: int = AGREEMENT_HEAD,
) -> GreedyAgreement:
    """Compare continuations of the same prompts, one pair per prompt."""
    if len(candidate) != len(reference) or not reference:
        raise ValueError("greedy agreement needs one candidate continuation per reference one")
    divergences, identical, compared = [], 0, 0
    for mine, theirs in zip(candidate, reference, strict=True):
        length = min(len(mine), len(theirs))
        first = next((i for i in range(length) if mine[i] != theirs[i]), length)
        divergences.append(first)
        window = min(head, length)
        identical += sum(mine[i] == theirs[i] for i in range(window))
        compared += window
    return GreedyAgreement(
        mean_first_divergence=float(np.mean(divergences)),
        identical_share=identical / compared if compared else 0.0,
        head=head,
        prompts=len(reference),
    )
