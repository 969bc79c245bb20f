"""How long each stage of a run took, told to the progress display as each one ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Progress = Callable[[str, int, int], None]


@dataclass
class StageClock:
    """Times the stages of one run; `seconds` keeps each stage's total (a stage entered
    twice adds up) in the order they first ran."""

    progress: Progress
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as the stage `name`; say when it ends and how long it took."""
        start = time.monotonic()
        self.progress(name, 0, 0)
        try:
            yield
        finally:
            took = time.monotonic() - start
            self.seconds[name] = round(self.seconds.get(name, 0.0) + took, 3)
        self.progress(f"{name}: done in {took:.1f} s", 0, 0)
