"""How a server runs the pick: instances, threads each, and server-side batching."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServingSetup:
    """`instances` copies of the model, each on `threads` threads; with `batching`, the
    server joins requests that arrive within `queue_delay_us` into one batch."""

    instances: int
    threads: int
    batching: bool
    queue_delay_us: int = 0

    def label(self) -> str:
        batching = f"batching ≤{self.queue_delay_us} µs" if self.batching else "no batching"
        return f"{self.instances}×{self.threads} threads, {batching}"
