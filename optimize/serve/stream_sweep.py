"""The load sweep of a language model's pick: concurrent streams of generation requests
served by one instance of the pick in its runtime. Where the runtime generates batches,
the requests waiting when the instance turns to them are served together as one batch (a
server's dynamic batching; later arrivals wait for the next); elsewhere one at a time, in
arrival order. At each number of streams: the tokens/s of all of them together and the
time to first token each request waits, queueing included. It recommends the most streams
whose p99 time to first token is within the SLO."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from hardware.profile import summarize
from hardware.runtimes.generative import Generation, GenerativeModel
from hardware.runtimes.registry import runtime
from hardware.targets import parse_target
from optimize.errors import UserError
from optimize.serve.pick_json import ServedPick

STREAM_COUNTS = (1, 2, 4, 8)
# Each point lasts until every stream had at least two answers and all of them at least
# this many, however long that takes: a percentile over fewer says little.
ANSWERS_PER_POINT = 8
# New tokens per request: a short chat answer.
NEW_TOKENS = 64


@dataclass(frozen=True)
class StreamPoint:
    """One number of concurrent streams: what the requests got over `seconds`."""

    streams: int
    requests: int
    tokens: int
    seconds: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    ms_per_token: float
    # The generation calls the requests were answered in (fewer than requests: batched).
    batches: int = 0

    @property
    def mean_batch(self) -> float:
        """Requests per generation call."""
        return self.requests / self.batches if self.batches else float("nan")

    @property
    def tokens_per_s(self) -> float:
        """All streams' new tokens over the wall time of the point."""
        return self.tokens / self.seconds


@dataclass
class StreamSweep:
    """Every point measured and the recommended one: the most streams within the SLO on
    the p99 time to first token (None when no point meets it)."""

    label: str
    runtime: str
    prompt_tokens: int
    new_tokens: int
    slo_p99_ms: float | None
    points: list[StreamPoint] = field(default_factory=list)
    # Whether waiting requests were served together as one batch.
    batched: bool = False

    @property
    def recommended(self) -> StreamPoint | None:
        within = [
            p for p in self.points if self.slo_p99_ms is None or p.ttft_p99_ms <= self.slo_p99_ms
        ]
        return max(within, key=lambda p: p.streams) if within else None

    def to_dict(self) -> dict[str, object]:
        """Plain data for stream_sweep.json, rates included."""
        data = asdict(self)
        data["points"] = [
            asdict(p) | {"tokens_per_s": p.tokens_per_s, "mean_batch": p.mean_batch}
            for p in self.points
        ]
        recommended = self.recommended
        data["recommended_streams"] = recommended.streams if recommended else None
        return data


def open_pick(pick: ServedPick, threads: int | None = None) -> GenerativeModel:
    """The pick opened in its runtime under the settings it was picked with (on `threads`
    when given); a UserError naming what to install when the runtime is missing here."""
    found = runtime(pick.runtime)
    target = parse_target(pick.target)
    if reason := found.unavailable(target):
        raise UserError(f"the pick runs in {pick.runtime}, which is not usable here: {reason}")
    settings = dict(pick.settings) | ({"threads": threads} if threads else {})
    options = found.settings(target, [], (int(settings.get("threads") or 1),))
    if not options:
        raise UserError(f"{pick.runtime} offers no setting on {pick.target} here")
    return found.open(pick.out_dir / pick.artifact, target, type(options[0])(**settings))


def sweep_streams(
    pick: ServedPick,
    seconds: float,
    slo_p99_ms: float | None = None,
    progress: Callable[[str], None] = lambda message: None,
    counts: tuple[int, ...] = STREAM_COUNTS,
    new_tokens: int = NEW_TOKENS,
) -> StreamSweep:
    """Serve `pick` to each of `counts` concurrent streams for at least `seconds` (and
    ANSWERS_PER_POINT answers), from the prompt the run timed."""
    if not pick.prompt_ids:
        raise UserError(
            f"{pick.out_dir / 'pick.json'} has no prompt to serve: it was written by an "
            "older optimize; run `optimize run` again"
        )
    model = open_pick(pick)
    prompt = list(pick.prompt_ids)
    # The first call pays for the runtime's lazy set-up, which no stream should.
    model.generate(prompt, 2)
    sweep = StreamSweep(
        pick.label, pick.runtime, len(prompt), new_tokens, slo_p99_ms, batched=model.serves_batches
    )
    for streams in counts:
        progress(f"serving {streams} concurrent stream(s)")
        sweep.points.append(_serve(model, prompt, streams, seconds, new_tokens))
    return sweep


def _serve(
    model: GenerativeModel, prompt: list[int], streams: int, seconds: float, new_tokens: int
) -> StreamPoint:
    """`streams` clients each send a request, wait for its answer and send the next, for
    `seconds`; one engine thread answers them in arrival order, those waiting together
    where the model serves batches."""
    requests: queue.Queue = queue.Queue()
    answers: list[tuple[int, Generation]] = []
    batch_sizes: list[int] = []
    failures: list[Exception] = []
    deadline = time.perf_counter() + seconds

    def engine() -> None:
        while (request := requests.get()) is not None:
            batch = [request]
            while model.serves_batches and not requests.empty():
                batch.append(requests.get())
            stop = batch[-1] is None
            batch = batch[:-1] if stop else batch
            try:
                if len(batch) == 1:
                    generations = [model.generate(prompt, new_tokens)]
                else:
                    generations = model.generate_batch([prompt] * len(batch), new_tokens)
                answers.extend((sent, g) for (sent, _), g in zip(batch, generations, strict=True))
                batch_sizes.append(len(batch))
            except Exception as exc:  # the sweep ends with it, raised below
                failures.append(exc)
            for _, done in batch:
                done.set()
            if stop:
                return

    fewest = max(2, -(-ANSWERS_PER_POINT // streams))

    def client() -> None:
        answered = 0
        while not failures and (answered < fewest or time.perf_counter() < deadline):
            done = threading.Event()
            requests.put((time.perf_counter_ns(), done))
            done.wait()
            answered += 1

    server = threading.Thread(target=engine, daemon=True)
    server.start()
    started = time.perf_counter()
    clients = [threading.Thread(target=client, daemon=True) for _ in range(streams)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    elapsed = time.perf_counter() - started
    requests.put(None)
    server.join()
    if failures:
        raise failures[0]
    waits = [(g.token_ns[0] - sent_ns) / 1e6 for sent_ns, g in answers if g.token_ns]
    ttft = summarize(waits, "")
    per_token = [g.decode_ms_per_token for _, g in answers if g.decode_ms_per_token]
    return StreamPoint(
        streams=streams,
        requests=len(answers),
        tokens=sum(len(g.tokens) for _, g in answers),
        seconds=elapsed,
        ttft_p50_ms=ttft.p50_ms,
        ttft_p99_ms=ttft.p99_ms,
        ms_per_token=summarize(per_token, "").p50_ms if per_token else float("nan"),
        batches=len(batch_sizes),
    )
