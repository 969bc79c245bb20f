"""What the search for candidates found: every candidate, the repairs, the pruning sweep."""

from __future__ import annotations

from dataclasses import dataclass, field

from optimize.build.variant import Candidate
from optimize.search.fallback import Repair
from optimize.search.prune_sweep import PruneSweep


@dataclass
class Found:
    """Every candidate built and screened (variants of the chains, pruned ones, the repairs'
    steps, and the rows of the other runtimes), the accuracy fallback's repairs and the
    pruning sweep, when one ran."""

    variants: list[Candidate]
    repairs: list[Repair] = field(default_factory=list)
    prune_sweep: PruneSweep | None = None
