"""The user's limits, in the one place they live: how far a variant may stray from the
original and still be picked, and the ceilings on its latency, size and memory."""

from __future__ import annotations

from pydantic import Field, field_validator

from optimize.config.validation import AboveZero, Section, show


class Limits(Section):
    """What a variant must meet to be picked.

    With labelled data the task metric decides: `max_accuracy_drop` is in absolute points
    of a metric scored in [0, 1] (accuracy, F1, R², cosine; 1.0 = one point), and in percent
    of the original's score for unbounded ones (MSE, MAE, a user's metric);
    `max_relative_accuracy_drop`, when set, also bounds the drop in percent of the original's
    score. Without labels, fidelity decides: `min_cosine` bounds the mean cosine similarity of
    the variant's outputs to the original's, and, when set, `min_top1_agreement` bounds the
    share of samples whose top class stays the original's where the outputs look like class
    scores (a cosine near 1 can hide flipped decisions). It is off by default: an
    embedding has the shape of class scores, and its argmax means nothing. The ceilings bound the pick's median batch-1
    latency, its size on disk and the memory its session adds to the serving process.
    """

    max_accuracy_drop: float = 1.0
    # A language model's tolerance: its perplexity on the user's text at most this many
    # percent above the original's.
    max_perplexity_increase: float = Field(default=5.0, ge=0)
    max_relative_accuracy_drop: AboveZero | None = None
    min_cosine: float = 0.999
    min_top1_agreement: float | None = None
    max_latency_ms: AboveZero | None = None
    max_size_mb: AboveZero | None = None
    max_memory_mb: AboveZero | None = None

    @field_validator("max_accuracy_drop")
    @classmethod
    def _points(cls, value: float) -> float:
        if not 0 <= value <= 100:
            raise ValueError(f"expected points from 0 to 100, got {show(value)}")
        return value

    @field_validator("min_top1_agreement")
    @classmethod
    def _share(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 1:
            raise ValueError(f"expected a share from 0 to 1, got {show(value)}")
        return value

    @field_validator("min_cosine")
    @classmethod
    def _cosine(cls, value: float) -> float:
        if not -1 <= value <= 1:
            raise ValueError(f"expected a cosine from -1 to 1, got {show(value)}")
        return value

    def describe(self) -> str:
        """The limits in one sentence, as the report and the plan state them."""
        text = (
            f"with labels, a metric drop <= {self.max_accuracy_drop} points "
            "(percent for MSE/MAE); "
            f"without, a mean output cosine >= {self.min_cosine}"
        )
        if self.min_top1_agreement is not None:
            text += f" and, for class scores, top-1 agreement >= {self.min_top1_agreement}"
        if self.max_relative_accuracy_drop is not None:
            text += f"; accuracy drop <= {self.max_relative_accuracy_drop}% of the original's"
        if self.max_latency_ms is not None:
            text += f"; median batch-1 latency <= {self.max_latency_ms} ms"
        if self.max_size_mb is not None:
            text += f"; size <= {self.max_size_mb} MB"
        if self.max_memory_mb is not None:
            text += f"; memory <= {self.max_memory_mb} MB"
        return text
