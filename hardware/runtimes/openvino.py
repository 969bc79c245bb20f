"""OpenVINO as a runtime: an ONNX file compiled for the CPU at the precisions the CPU runs
natively, with a latency hint and one stream for latency, and a throughput hint (parallel
streams, the batch split across them) for throughput."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.runtimes.base import Bound, OpenedModel, Runtime, RuntimeName, not_installed
from hardware.targets import Target, TargetUnavailableError

INSTALL = "pip install openvino"
# A setting left to OpenVINO.
DEFAULT = "default"


@dataclass(frozen=True)
class OpenVinoSettings:
    """How OpenVINO compiles the model: inference threads (0: its default), the inference
    precision asked for, and the performance hint with its stream count; DEFAULT leaves
    a setting to OpenVINO."""

    threads: int = 0
    precision: str = "f32"
    hint: str = "LATENCY"
    streams: int = 1

    @classmethod
    def defaults(cls) -> OpenVinoSettings:
        """Nothing asked: OpenVINO's own choices, as a user who compiles with no config
        gets them (bf16 on AMX, f32 elsewhere, its latency hint)."""
        return cls(threads=0, precision=DEFAULT, hint=DEFAULT, streams=0)


def native_precisions(cpu_flags: list[str]) -> list[str]:
    """The inference precisions this CPU runs in hardware: f32 always, bf16 with
    AVX-512-BF16 or AMX, f16 with AMX-FP16 (elsewhere OpenVINO would emulate them)."""
    precisions = ["f32"]
    if any(flag in cpu_flags for flag in ("avx512_bf16", "amx_bf16")):
        precisions.append("bf16")
    if "amx_fp16" in cpu_flags:
        precisions.append("f16")
    return precisions


class OpenVinoModel(OpenedModel[OpenVinoSettings]):
    """A model compiled by OpenVINO for the CPU, with one inference request."""

    def __init__(
        self, compiled, settings: OpenVinoSettings, compile_for: Callable[[str], object]
    ) -> None:
        super().__init__(settings)
        self.compiled = compiled
        self.compile_for = compile_for
        self.request = compiled.create_infer_request()
        self.names = [port.get_any_name() for port in compiled.inputs]
        # How the throughput batch was served, once bound: "2 streams".
        self.throughput_setup: str | None = None

    def bind(self, feeds: dict[str, np.ndarray]) -> Bound:
        import openvino as ov

        # A request of its own per binding (batch 1 and the throughput batch live at once);
        # it reads the arrays in place, so no copy falls in the timed region.
        request = self.compiled.create_infer_request()
        for name in self.names:
            request.set_tensor(
                name, ov.Tensor(np.ascontiguousarray(feeds[name]), shared_memory=True)
            )
        return request.infer, None

    def bind_throughput(self, feeds: dict[str, np.ndarray]) -> Bound:
        """The batch split across the streams of a model compiled with OpenVINO's
        throughput hint on every core this process may use, one request per stream in
        flight at once: how OpenVINO serves many inputs. A model whose batch is fixed takes
        the batch whole, under `bind`."""
        import openvino as ov

        batch_dims = [port.get_partial_shape()[0] for port in self.compiled.inputs]
        if not all(dim.is_dynamic for dim in batch_dims):
            return self.bind(feeds)
        compiled = self.compile_for("THROUGHPUT")
        streams = int(compiled.get_property("NUM_STREAMS"))
        requests = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        rows = len(next(iter(feeds.values())))
        parts = [part for part in np.array_split(np.arange(rows), requests) if len(part)]
        queue = ov.AsyncInferQueue(compiled, len(parts))
        chunks = [
            {name: np.ascontiguousarray(feeds[name][part[0] : part[-1] + 1]) for name in self.names}
            for part in parts
        ]

        def run_batch() -> None:
            for chunk in chunks:
                queue.start_async(chunk, share_inputs=True)
            queue.wait_all()

        run_batch()  # shapes are first seen here, outside the timed region
        threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))
        self.throughput_setup = (
            f"{streams} stream{'s' * (streams != 1)} on {threads} thread{'s' * (threads != 1)}, "
            f"{len(parts)} request{'s' * (len(parts) != 1)}"
        )
        return run_batch, None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.request.infer({name: feeds[name] for name in self.names})
        return [np.array(result[port]) for port in self.compiled.outputs]

    @property
    def providers(self) -> list[str]:
        """The device and the precision OpenVINO actually compiled for, read back: what
        ran, not what was asked (a precision the CPU lacks falls back)."""
        providers = [f"OpenVINO CPU ({self.precision_used})"]
        if self.throughput_setup:
            providers.append(f"throughput hint: {self.throughput_setup}")
        return providers

    @property
    def precision_used(self) -> str:
        """The inference precision the compiled model runs at, e.g. 'bf16'."""
        return self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()


class OpenVinoRuntime(Runtime[OpenVinoSettings]):
    """OpenVINO on the CPU, swept over thread counts and the CPU's native precisions."""

    name = RuntimeName.OPENVINO
    takes = "onnx"

    def unavailable(self, target: Target) -> str | None:
        if target.is_gpu:
            return "OpenVINO runs on Intel devices; on an NVIDIA GPU, ONNX Runtime and TensorRT do"
        return not_installed("openvino", "OpenVINO", INSTALL)

    def settings(
        self, target: Target, cpu_flags: list[str], thread_counts: tuple[int, ...]
    ) -> list[OpenVinoSettings]:
        # The lowest precision first: where the CPU runs it in hardware it is usually the
        # faster, and a slower row screened after a faster one within the limits need not
        # have its outputs judged.
        return [
            OpenVinoSettings(threads=n, precision=p)
            for p in reversed(native_precisions(cpu_flags))
            for n in thread_counts or (0,)
        ]

    def label(self, settings: OpenVinoSettings) -> str:
        return f"openvino {settings.precision}"

    def open(self, artifact: Path, target: Target, settings: OpenVinoSettings) -> OpenVinoModel:
        if reason := self.unavailable(target):
            raise TargetUnavailableError(reason)
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(artifact))

        def compile_for(hint: str):
            config = {}
            if settings.precision != DEFAULT:
                config["INFERENCE_PRECISION_HINT"] = settings.precision
            if hint != DEFAULT:
                config["PERFORMANCE_HINT"] = hint
            if hint == settings.hint and settings.streams:
                config["NUM_STREAMS"] = str(settings.streams)
            # Serving for throughput takes every core the process may use, split into
            # streams by OpenVINO: the thread count is the latency setting's.
            if settings.threads and hint != "THROUGHPUT":
                config["INFERENCE_NUM_THREADS"] = str(settings.threads)
            return core.compile_model(model, "CPU", config)

        return OpenVinoModel(compile_for(settings.hint), settings, compile_for)
