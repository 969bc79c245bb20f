"""Load on a server, as its clients would put it: closed loop (a number of clients, each
sending its next request when the last is answered) or open loop (requests arriving at a
rate, as a Poisson process, whether or not earlier ones were answered)."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from optimize.serve.serving_setup import ServingSetup

# The first part of each level's time only warms the server up; it is not counted.
WARM_UP_SHARE = 0.2


class Client(Protocol):
    """A way to send one sample to a server without waiting, and to wait for its answer."""

    def send(self) -> Any:
        """Send one request; return a handle to wait on."""

    def wait(self, handle: Any) -> int:
        """Block until the request is answered; return when (time.perf_counter_ns), or
        raise the error the server answered with."""


@dataclass(frozen=True)
class LoadPoint:
    """What a server under `setup` did at one load: `concurrency` clients (closed loop) or
    `rate` requests per second (open loop); answered requests per second and latency
    percentiles over the requests answered, and how many failed."""

    setup: ServingSetup
    mode: str
    load: float
    requests: int
    failed: int
    throughput_per_s: float
    # None when no request was answered in the counted time.
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"setup": asdict(self.setup) | {"label": self.setup.label()}}


def closed_loop(client: Client, setup: ServingSetup, clients: int, seconds: float) -> LoadPoint:
    """`clients` threads sending requests back to back for `seconds` (after a warm-up)."""
    counted_from = time.perf_counter_ns() + int(WARM_UP_SHARE * seconds * 1e9)
    stop = counted_from + int(seconds * 1e9)
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def one_client() -> None:
        while (sent := time.perf_counter_ns()) < stop:
            answered = _answered(client, client.send())
            if sent >= counted_from:
                with lock:
                    if answered is None:
                        failures[0] += 1
                    else:
                        latencies.append((answered - sent) / 1e9)

    # Daemons: an interrupted sweep must not wait on clients whose server has gone.
    _run_all([threading.Thread(target=one_client, daemon=True) for _ in range(clients)])
    return _point(setup, "closed", clients, latencies, failures[0], seconds)


def open_loop(
    client: Client, setup: ServingSetup, rate: float, seconds: float, seed: int = 0
) -> LoadPoint:
    """Requests arriving at `rate` per second for `seconds` (after a warm-up), each timed
    from when it was due to arrive, so waiting in a queue, the server's or the sender's,
    counts."""
    rng = np.random.default_rng(seed)
    span = seconds * (1 + WARM_UP_SHARE)
    arrivals = np.cumsum(rng.exponential(1 / rate, size=int(rate * span * 1.5) + 16))
    arrivals_ns = (arrivals[arrivals < span] * 1e9).astype(np.int64)
    start = time.perf_counter_ns()
    sent: list[tuple[int, Any]] = []
    for due in arrivals_ns:
        lag_s = (start + due - time.perf_counter_ns()) / 1e9
        if lag_s > 0:
            time.sleep(lag_s)
        sent.append((start + int(due), client.send()))
    counted_from = start + int(WARM_UP_SHARE * seconds * 1e9)
    latencies, failed = [], 0
    for due, handle in sent:
        answered = _answered(client, handle)
        if due < counted_from:
            continue
        if answered is None:
            failed += 1
        else:
            latencies.append((answered - due) / 1e9)
    return _point(setup, "open", rate, latencies, failed, seconds)


def _answered(client: Client, handle: Any) -> int | None:
    """When the request was answered, or None when it failed."""
    try:
        return client.wait(handle)
    except Exception:  # a failed request is counted, as a load tester counts it
        return None


def _run_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _point(
    setup: ServingSetup, mode: str, load: float, latencies: list[float], failed: int, seconds: float
) -> LoadPoint:
    ms = np.array(latencies) * 1000
    p50, p95, p99 = (float(np.percentile(ms, q)) if latencies else None for q in (50, 95, 99))
    return LoadPoint(
        setup, mode, load, len(latencies), failed, len(latencies) / seconds, p50, p95, p99
    )
