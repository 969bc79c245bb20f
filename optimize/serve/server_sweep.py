"""The load sweep through a real server: the pick served by KServe's model server over the
Open Inference Protocol (v2) on 127.0.0.1, driven by tritonclient's HTTP client, started
here and stopped after, whatever happens."""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from optimize.errors import UserError
from optimize.serve.load_sweep import (
    LoadSweep,
    open_instance,
    open_loop_points,
    recommend,
    rising_load,
    sample_of,
)
from optimize.serve.pick_json import ServedPick
from optimize.serve.serving_setup import ServingSetup
from optimize.serve.triton import model_name, wire_type

START_TIMEOUT_S = 60.0
# Senders of open-loop requests: more than the requests a server has in flight at once.
SENDERS = 64
STOP_TIMEOUT_S = 10.0
LOG = Path("cache") / "kserve_server.log"


def sweep_through_server(
    pick: ServedPick,
    cores: int,
    slo_p99_ms: float | None,
    price_per_hour: float | None,
    seconds: float,
    progress: Callable[[str], None] = lambda message: None,
    start_timeout_s: float = START_TIMEOUT_S,
) -> LoadSweep:
    """Serve the pick on one instance with every core, batching off (the model server
    has no batcher), check a round trip against the pick run here, and put rising
    closed-loop load on it, then open-loop load at the recommended point."""
    if (
        importlib.util.find_spec("kserve") is None
        or importlib.util.find_spec("tritonclient") is None
    ):
        raise UserError(
            "the sweep through a server needs KServe and tritonclient: pip install 'optimize[serve]'"
        )
    setup = ServingSetup(1, cores, False)
    sample = sample_of(pick)
    result = LoadSweep("through KServe", cores, slo_p99_ms, price_per_hour)
    progress(f"starting KServe's model server for {pick.label} on 127.0.0.1")
    with ModelServerProcess(pick, cores, start_timeout_s) as server:
        client = HttpClient(server.url, model_name(pick), pick, sample)
        try:
            result.round_trip_error = _largest_difference(
                client.outputs(), open_instance(pick, cores)(sample)
            )
            progress(f"load through the server on {setup.label()}")
            result.points = rising_load(client, setup, slo_p99_ms, seconds)
            server.must_be_running()
            result.recommended = recommend(result.points, slo_p99_ms)
            if result.recommended is not None:
                progress("open-loop load through the server")
                result.points += open_loop_points(client, result.recommended, seconds)
                server.must_be_running()
        finally:
            client.close()
    return result


def _largest_difference(served: list[np.ndarray], local: list[np.ndarray]) -> float:
    return max(
        float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
        for a, b in zip(served, local, strict=True)
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]
    except OSError as exc:
        raise UserError(f"no free port on 127.0.0.1 for the model server ({exc})") from None


class ModelServerProcess:
    """optimize.serve.kserve_server in a child process on a free loopback port; entering
    waits until the model is ready, leaving stops the server (and it dies with this one)."""

    def __init__(self, pick: ServedPick, threads: int, start_timeout_s: float) -> None:
        self.pick, self.threads, self.start_timeout_s = pick, threads, start_timeout_s
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.log = pick.out_dir / LOG
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ModelServerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "optimize.serve.kserve_server",
            str(self.pick.out_dir),
            str(self.port),
            str(self.threads),
        ]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def must_be_running(self) -> None:
        """A UserError when the server has stopped by itself (its figures are then void)."""
        if self.process.poll() is not None:
            raise UserError(
                f"the model server stopped during the sweep (exit code {self.process.returncode}): "
                f"{self._last_log_line()}; its log is {self.log}"
            )

    def _wait_until_ready(self) -> None:
        import tritonclient.http as http

        client = http.InferenceServerClient(url=self.url)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UserError(
                    f"the model server exited (code {self.process.returncode}) before it was "
                    f"ready: {self._last_log_line()}; its log is {self.log}"
                )
            try:
                if client.is_server_ready() and client.is_model_ready(model_name(self.pick)):
                    return
            except Exception:  # not listening yet: connection refused or reset
                pass
            time.sleep(0.05)
        raise UserError(
            f"the model server did not come up within {self.start_timeout_s:g} s; it was "
            f"stopped; its log is {self.log}"
        )

    def _last_log_line(self) -> str:
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "it wrote nothing"


def _die_with_parent() -> None:
    """In the server's process before it starts: end with this process (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class HttpClient:
    """The sample sent over HTTP with tritonclient (see load_generator.Client): each
    request goes out from a pool of senders, each with its own connection, so open-loop
    arrivals never wait for an earlier answer."""

    def __init__(self, url: str, model: str, pick: ServedPick, sample: dict[str, np.ndarray]):
        self.url, self.model, self.sample = url, model, sample
        self.wire = {t["name"]: wire_type(t["dtype"]) for t in pick.inputs}
        self.output_names = [t["name"] for t in pick.outputs]
        self.local = threading.local()
        self.senders = ThreadPoolExecutor(max_workers=SENDERS)

    def close(self) -> None:
        """Stop the senders."""
        self.senders.shutdown(wait=True)

    def outputs(self) -> list[np.ndarray]:
        """The server's outputs for the sample; a UserError when it answers with an error."""
        try:
            result = self._infer()
        except Exception as exc:  # the server's error, to be said in one line
            raise UserError(
                f"the model server answered the first request with an error: {exc}"
            ) from None
        return [result.as_numpy(name) for name in self.output_names]

    def send(self) -> Future:
        return self.senders.submit(self._timed)

    def wait(self, handle: Future) -> int:
        return handle.result()

    def _timed(self) -> int:
        self._infer()
        return time.perf_counter_ns()

    def _infer(self):
        import tritonclient.http as http

        if not hasattr(self.local, "client"):
            self.local.client = http.InferenceServerClient(url=self.url)
        inputs = []
        for name, array in self.sample.items():
            tensor = http.InferInput(name, list(array.shape), self.wire[name])
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        return self.local.client.infer(self.model, inputs)
