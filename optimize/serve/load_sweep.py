"""The load sweep of the pick: every way of splitting the cores into instances × threads,
with server-side batching off and on, under closed-loop load of rising concurrency until
throughput stops rising or p99 passes the SLO; then open-loop load at the recommended
setup. It recommends the setup that serves the most requests per second within the SLO."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hardware.runtimes.base import RuntimeName
from hardware.runtimes.registry import runtime
from hardware.targets import parse_target
from optimize.serve.in_process_server import InProcessServer, Request, Run
from optimize.serve.load_generator import Client, LoadPoint, closed_loop, open_loop
from optimize.serve.pick_json import ServedPick
from optimize.serve.serving_setup import ServingSetup
from passes.base import TensorSpec

CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)
# A level that adds less than this share of throughput over the one before is past the knee.
STILL_RISING = 0.05
# Open-loop rates, as shares of the recommended setup's closed-loop peak.
OPEN_LOOP_SHARES = (0.5, 0.8, 0.95)
# The knee: the fewest clients that reach this share of a setup's peak throughput.
KNEE_SHARE = 0.9


@dataclass
class LoadSweep:
    """Every point measured, the recommended one (None when no setup meets the SLO), the
    knee of each setup, and the cost of a million requests at the recommended point."""

    via: str
    cores: int
    slo_p99_ms: float | None
    price_per_hour: float | None
    points: list[LoadPoint] = field(default_factory=list)
    recommended: LoadPoint | None = None
    # Through a server: the largest difference between its outputs for the sample and the
    # pick's run here.
    round_trip_error: float | None = None

    @property
    def cost_per_million(self) -> float | None:
        """The machine's price for a million requests at the recommended throughput."""
        if self.price_per_hour is None or self.recommended is None:
            return None
        return self.price_per_hour / (self.recommended.throughput_per_s * 3600) * 1e6

    def knees(self) -> dict[str, LoadPoint]:
        """Each setup's knee (see KNEE_SHARE), by the setup's label."""
        knees = {}
        for setup in dict.fromkeys(p.setup for p in self.points):
            closed = [p for p in self.points if p.setup == setup and p.mode == "closed"]
            peak = max(p.throughput_per_s for p in closed)
            knees[setup.label()] = next(
                p for p in closed if p.throughput_per_s >= KNEE_SHARE * peak
            )
        return knees

    def to_dict(self) -> dict[str, object]:
        recommended = self.recommended.to_dict() if self.recommended else None
        return {
            "via": self.via,
            "cores": self.cores,
            "slo_p99_ms": self.slo_p99_ms,
            "price_per_hour": self.price_per_hour,
            "cost_per_million": self.cost_per_million,
            "round_trip_error": self.round_trip_error,
            "recommended": recommended,
            "knees": {label: p.to_dict() for label, p in self.knees().items()},
            "points": [p.to_dict() for p in self.points],
        }


def serving_setups(
    cores: int, batches: bool, one_run_ms: float, one_instance: bool = False
) -> list[ServingSetup]:
    """Each split of `cores` into instances × threads (only one instance of all of them
    with `one_instance`), with batching off, and where the model batches, on with no delay
    and with a delay of about one run."""
    delay_us = max(100, round(one_run_ms * 1000))
    batching = [(False, 0)] + ([(True, 0), (True, delay_us)] if batches else [])
    splits = [
        (n, cores // n) for n in range(1, (1 if one_instance else cores) + 1) if cores % n == 0
    ]
    return [ServingSetup(n, threads, on, delay) for n, threads in splits for on, delay in batching]


def sweep_in_process(
    pick: ServedPick,
    cores: int,
    slo_p99_ms: float | None = None,
    price_per_hour: float | None = None,
    seconds: float = 0.5,
    progress: Callable[[str], None] = lambda message: None,
) -> LoadSweep:
    """Sweep the pick served in this process (see the module docstring)."""
    sample = sample_of(pick)
    batch = pick.batch
    batches = batch > 1 and pick.batches_on_first_dim
    result = LoadSweep("in-process", cores, slo_p99_ms, price_per_hour)
    # PyTorch's thread count is the whole process's: its instances cannot each have their own.
    one_instance = pick.runtime == RuntimeName.TORCH
    for setup in serving_setups(cores, batches, float(pick.figures["p50_ms"]), one_instance):
        progress(f"load on {setup.label()}")
        runs = [open_instance(pick, setup.threads) for _ in range(setup.instances)]
        server = InProcessServer(runs, setup.batching, setup.queue_delay_us / 1e6, batch)
        with server:
            result.points += rising_load(
                InProcessClient(server, sample), setup, slo_p99_ms, seconds
            )
    result.recommended = recommend(result.points, slo_p99_ms)
    if result.recommended is not None:
        best = result.recommended
        progress(f"open-loop load on {best.setup.label()}")
        runs = [open_instance(pick, best.setup.threads) for _ in range(best.setup.instances)]
        with InProcessServer(
            runs, best.setup.batching, best.setup.queue_delay_us / 1e6, batch
        ) as server:
            client = InProcessClient(server, sample)
            for share in OPEN_LOOP_SHARES:
                rate = share * best.throughput_per_s
                result.points.append(open_loop(client, best.setup, rate, seconds))
    return result


def rising_load(
    client: Client, setup: ServingSetup, slo_p99_ms: float | None, seconds: float
) -> list[LoadPoint]:
    """Closed-loop points at rising concurrency, up to the first past the knee or the SLO."""
    points: list[LoadPoint] = []
    for clients in CONCURRENCY:
        point = closed_loop(client, setup, clients, seconds)
        points.append(point)
        # Nothing answered in time: more clients cannot help, and there is no p99 to read.
        if not point.requests:
            break
        past_slo = slo_p99_ms is not None and point.p99_ms > slo_p99_ms
        flat = len(points) > 1 and point.throughput_per_s < points[-2].throughput_per_s * (
            1 + STILL_RISING
        )
        if past_slo or flat:
            break
    return points


def open_loop_points(client: Client, best: LoadPoint, seconds: float) -> list[LoadPoint]:
    """Poisson arrivals at shares of the recommended point's throughput (OPEN_LOOP_SHARES)."""
    return [
        open_loop(client, best.setup, share * best.throughput_per_s, seconds)
        for share in OPEN_LOOP_SHARES
    ]


def recommend(points: list[LoadPoint], slo_p99_ms: float | None) -> LoadPoint | None:
    """The closed-loop point with the most throughput whose p99 meets the SLO (any, when
    none is given), the lower p99 among those within the noise of it; None when no point
    meets the SLO."""
    meeting = [
        p
        for p in points
        if p.mode == "closed" and p.requests and (slo_p99_ms is None or p.p99_ms <= slo_p99_ms)
    ]
    if not meeting:
        return None
    top = max(p.throughput_per_s for p in meeting)
    close = [p for p in meeting if p.throughput_per_s >= top * (1 - STILL_RISING / 2)]
    return min(close, key=lambda p: p.p99_ms)


def open_instance(pick: ServedPick, threads: int) -> Run:
    """One instance of the pick, opened by its runtime with its settings on `threads`."""
    target = parse_target(pick.target)
    found = runtime(pick.runtime)
    kind = type(found.settings(target, [], (threads,))[0])
    names = {f.name for f in dataclasses.fields(kind)}
    given = {k: v for k, v in pick.settings.items() if k in names}
    given["intra_op_threads" if "intra_op_threads" in names else "threads"] = threads
    artifact = pick.out_dir / pick.artifact
    model = _torch_module(pick) if pick.runtime == RuntimeName.TORCH else artifact
    return found.open(model, target, kind(**given)).run


def _torch_module(pick: ServedPick):
    from optimize.source.load import SourceSpec

    flags = tuple(f"{t['name']}:{','.join(map(str, t['dims']))}:{t['dtype']}" for t in pick.inputs)
    artifact = pick.out_dir / pick.artifact
    return SourceSpec(artifact, flags, trust_pickle=True, task=pick.source_task).load().model


def sample_of(pick: ServedPick) -> dict[str, np.ndarray]:
    """One generated sample of the pick's inputs."""
    from optimize.data.inputs import generate_inputs

    specs = [TensorSpec(t["name"], tuple(t["dims"]), t["dtype"]) for t in pick.inputs]
    return generate_inputs(specs, 1)


class InProcessClient:
    """Sends the sample to an InProcessServer (see load_generator.Client)."""

    def __init__(self, server: InProcessServer, sample: dict[str, np.ndarray]) -> None:
        self.server, self.sample = server, sample

    def send(self) -> Request:
        return self.server.submit(self.sample)

    def wait(self, handle: Request) -> int:
        handle.done.wait()
        if handle.error is not None:
            raise handle.error
        return handle.answered_ns
