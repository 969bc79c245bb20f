"""Which screenings judge their outputs. Judging a candidate's outputs over the evaluation
set often costs several times its screening (MiniLM at sequence 128: 6 s against 1). A
candidate that screens slower, beyond noise, than one already within the limits cannot
be picked, whatever its outputs: its figures are kept and its outputs left unjudged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optimize.build.variant import Candidate
from optimize.config.limits import Limits
from optimize.data.eval_store import EvalStore
from optimize.measure.cache import figures_from_dict
from optimize.measure.worker import SCREEN_MARGIN, beyond_bar

# What a record of steps says of a variant whose outputs were not judged.
UNJUDGED = "outputs not judged: slower beyond noise than one within the limits, it cannot win"


@dataclass
class JudgingBar:
    """The fastest candidate within the limits measured so far, which later screenings
    are held to; `enabled` False judges every candidate (a run that times all of them)."""

    enabled: bool = True
    fastest: Candidate | None = None

    def note(self, candidate: Candidate) -> None:
        """Take a newly measured candidate into account: the bar if it is within the
        limits and faster; the reason it was not judged if it was not."""
        if candidate.within_tolerance:
            if self.fastest is None or candidate.p50_ms < self.fastest.p50_ms:
                self.fastest = candidate
        elif candidate.measured and candidate.fidelity is None and self.fastest is not None:
            candidate.not_timed_further = (
                f"screened at {candidate.p50_ms / self.fastest.p50_ms:.1f}× the latency of "
                f"{self.fastest.label} ({self.fastest.p50_ms:.3f} ms), beyond noise, so it "
                "cannot win; its outputs were not judged"
            )

    def near(self) -> tuple[float, float] | None:
        """The median a screening must come within noise of for its outputs to be judged,
        and the margin; None: judge every one."""
        if not self.enabled or self.fastest is None:
            return None
        return self.fastest.p50_ms, SCREEN_MARGIN + self.fastest.spread

    def lets_stand(self, stored: dict[str, Any]) -> bool:
        """Whether a stored screening may be taken as it is: judged, or still beyond the
        bar (a run under other limits may want its outputs judged now)."""
        if "measurements" not in stored or stored["fidelity"] is not None:
            return True
        return beyond_bar(figures_from_dict(stored)[0], self.near())


def judged_in_part(stored: dict[str, Any], limits: Limits, store: EvalStore) -> bool:
    """Whether a stored screening's outputs were judged on part of `store` only, stopped
    against a limit that `limits` no longer fails whatever the rest: they must be judged
    again, whole. Labelled data is always judged whole (see fidelity_over)."""
    if store.labelled or "measurements" not in stored or stored["fidelity"] is None:
        return False
    fidelity = figures_from_dict(stored)[1]
    return fidelity.samples < store.samples and not fidelity.short_of(
        limits.min_cosine, store.samples
    )
