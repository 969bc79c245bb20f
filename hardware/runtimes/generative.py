"""The contract of a generative runtime: a causal language model opened in its own format,
generating greedily with a timestamp per token, and scoring text teacher-forced."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np

from hardware.runtimes.base import Bound, OpenedModel, Runtime
from hardware.targets import Target

S = TypeVar("S")

# A bound run (what the head-to-head times) answers a prompt of at most this many tokens
# with this many new ones: a short request, decode steps dominating the prefill.
BOUND_PROMPT = 128
BOUND_NEW_TOKENS = 64
# Greedy agreement with the original: continuations of this many tokens from the first
# this many tokens of each evaluation window.
AGREEMENT_PROMPT = 32
AGREEMENT_TOKENS = 32


class Generation(NamedTuple):
    """One greedy generation: the new tokens, when the call started and when each token
    became available (time.perf_counter_ns), as the runtime reported them."""

    tokens: list[int]
    start_ns: int
    token_ns: list[int]

    @property
    def ttft_ms(self) -> float:
        """Time to first token: the prompt's prefill and the first sampling step."""
        return (self.token_ns[0] - self.start_ns) / 1e6

    @property
    def decode_ms_per_token(self) -> float | None:
        """Mean time per output token after the first; None with fewer than two tokens."""
        if len(self.token_ns) < 2:
            return None
        return (self.token_ns[-1] - self.token_ns[0]) / 1e6 / (len(self.token_ns) - 1)


class TokenClock:
    """Collects the arrival time of each generated token, for runtimes that report tokens
    through a callback (a streamer)."""

    def __init__(self) -> None:
        self.start_ns = time.perf_counter_ns()
        self.token_ns: list[int] = []

    def tick(self, count: int = 1) -> None:
        """`count` tokens arrived now (a runtime may hand over several at once)."""
        now = time.perf_counter_ns()
        self.token_ns.extend([now] * count)

    def generation(self, tokens: Sequence[int]) -> Generation:
        """The generation of `tokens` with the arrival times collected."""
        return Generation([int(t) for t in tokens], self.start_ns, self.token_ns[: len(tokens)])


def log_softmax_of(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """The log-probability of each target under the logits of the position before it:
    `logits` is [positions, vocab] for positions 0..n-2 and `targets` the n-1 next ids.
    Computed in float64 so that every runtime's figure is reduced the same way."""
    scores = np.asarray(logits, dtype=np.float64)
    top = scores.max(axis=-1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(scores - top).sum(axis=-1))
    picked = scores[np.arange(len(targets)), np.asarray(targets)]
    return picked - log_norm


class GenerativeModel(OpenedModel[S]):
    """A causal language model a runtime opened under one setting.

    Every generation is greedy and produces exactly `max_new_tokens` tokens: the end of
    sequence is suppressed (as `min_new_tokens` does), so that runtimes agree token for
    token and every timed call does the same work."""

    # Whether `generate_batch` serves several sequences at once (one batch, stepped together).
    serves_batches: ClassVar[bool] = False

    @abstractmethod
    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
        """Greedy continuation of `prompt_ids`, with when each token arrived."""

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[Generation]:
        """Greedy continuations of several prompts of one length served together, each
        with when its tokens arrived; only where `serves_batches`."""
        raise NotImplementedError(f"{type(self).__name__} generates one sequence at a time")

    @abstractmethod
    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """Teacher-forced log-probability of each of ids[1:] given the ids before it, from
        one forward pass over `ids` in this runtime."""

    def bind(self, feeds: dict[str, np.ndarray]) -> Bound:
        """A greedy generation of BOUND_NEW_TOKENS tokens from the first BOUND_PROMPT
        tokens of each row of feeds['input_ids'], for the one timing loop."""
        rows = np.atleast_2d(feeds["input_ids"])[:, :BOUND_PROMPT]
        prompts = [list(map(int, row)) for row in rows]
        if len(prompts) == 1:
            return (lambda: self.generate(prompts[0], BOUND_NEW_TOKENS)), None
        return (lambda: self.generate_batch(prompts, BOUND_NEW_TOKENS)), None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """For each row of feeds['input_ids']: the teacher-forced log-probabilities of its
        tokens, and the greedy continuation of its first AGREEMENT_PROMPT tokens,
        AGREEMENT_TOKENS long (its agreement with another runtime's is then counted)."""
        rows = [list(map(int, row)) for row in np.atleast_2d(feeds["input_ids"])]
        logprobs = np.stack([self.token_logprobs(row) for row in rows])
        continuations = [
            self.generate(row[:AGREEMENT_PROMPT], AGREEMENT_TOKENS).tokens for row in rows
        ]
        return [logprobs, np.asarray(continuations, dtype=np.int64)]


class GenerativeRuntime(Runtime[S]):
    """A runtime for causal language models: opens an artifact of its own format into a
    GenerativeModel, measured in its own kind of figures (hardware.measuring)."""

    @abstractmethod
    def open(self, artifact: Any, target: Target, settings: S) -> GenerativeModel[S]:
        """Open `artifact` on `target` under `settings`."""
