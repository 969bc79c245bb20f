"""A model server inside this process, for the load sweep: instances of the opened model,
each on a thread of its own, taking requests from one queue. With batching, a free instance
joins the requests that arrive within the queue delay into one batch, as Triton's dynamic
batcher does. The runtimes release the GIL while they compute, so instances run at once."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Run = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


@dataclass
class Request:
    """One request: a single sample's inputs, and its outputs once answered."""

    feeds: dict[str, np.ndarray]
    done: threading.Event = field(default_factory=threading.Event)
    outputs: list[np.ndarray] | None = None
    error: BaseException | None = None
    answered_ns: int = 0


class InProcessServer:
    """Serves `runs` (one per instance) until closed; `submit` queues a request."""

    def __init__(self, runs: list[Run], batching: bool, queue_delay_s: float, max_batch: int):
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._batching, self._delay_s, self._max_batch = batching, queue_delay_s, max_batch
        self._threads = [
            threading.Thread(target=self._serve, args=(run,), daemon=True) for run in runs
        ]

    def __enter__(self) -> InProcessServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        # Requests sent after the stop signal are answered with an error, never left waiting.
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if request is not None:
                request.error = RuntimeError("the server stopped before answering")
                request.done.set()

    def submit(self, feeds: dict[str, np.ndarray]) -> Request:
        """Queue one sample; its `done` event is set when it is answered."""
        request = Request(feeds)
        self._queue.put(request)
        return request

    def _serve(self, run: Run) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first, *self._joining()] if self._batching else [first]
            if batch[-1] is None:  # the stop signal arrived while batching: pass it on
                batch.pop()
                self._queue.put(None)
            try:
                feeds = {n: np.concatenate([r.feeds[n] for r in batch]) for n in first.feeds}
                outputs = run(feeds)
                for index, request in enumerate(batch):
                    request.outputs = [o[index : index + 1] for o in outputs]
            except Exception as exc:  # the requests fail, the server goes on, as a server does
                for request in batch:
                    request.error = exc
            answered = time.perf_counter_ns()
            for request in batch:
                request.answered_ns = answered
                request.done.set()

    def _joining(self) -> list[Request | None]:
        """The requests that arrive within the queue delay, up to the largest batch."""
        joined: list[Request | None] = []
        deadline = time.perf_counter() + self._delay_s
        while len(joined) < self._max_batch - 1:
            wait = deadline - time.perf_counter()
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            joined.append(item)
            if item is None:
                break
        return joined
