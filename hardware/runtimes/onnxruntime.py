"""ONNX Runtime as a runtime: an ONNX file in a session on a target, IO-bound on GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hardware.model_files import parallel_branches
from hardware.runtimes.base import Bound, OpenedModel, Runtime, RuntimeName
from hardware.session import SessionSettings, missing_provider, open_session, run_session
from hardware.targets import Target


def bound_runner(session, feeds: dict[str, np.ndarray], device: str, device_id: int = 0):
    """A run function with inputs and outputs bound on `device` ('cuda' or 'cpu'), and
    the synchronizer that waits for its outputs.

    Binding keeps host-device copies out of the timed region, as in serving where
    inputs already live on the device.
    """
    import onnxruntime as ort

    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_ortvalue_input(
            name, ort.OrtValue.ortvalue_from_numpy(array, device, device_id)
        )
    for output in session.get_outputs():
        binding.bind_output(output.name, device, device_id)

    def run() -> None:
        session.run_with_iobinding(binding)

    run.binding = binding  # callers read outputs back with binding.copy_outputs_to_cpu()
    return run, binding.synchronize_outputs


class OnnxSession(OpenedModel[SessionSettings]):
    """An ONNX Runtime session on a target under one setting."""

    def __init__(self, session, target: Target, settings: SessionSettings) -> None:
        super().__init__(settings)
        self.session = session
        self.target = target

    def bind(self, feeds: dict[str, np.ndarray]) -> Bound:
        names = [i.name for i in self.session.get_inputs()]
        bound = {n: feeds[n] for n in names}
        if self.target.is_gpu:
            return bound_runner(self.session, bound, "cuda", self.target.device_id)
        return (lambda: self.session.run(None, bound)), None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return run_session(self.session, feeds)

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())


class OnnxRuntime(Runtime[SessionSettings]):
    """ONNX Runtime with the providers of the target (TensorRT, CUDA, CPU), swept over
    intra-op thread counts on CPU."""

    name = RuntimeName.ONNXRUNTIME
    takes = "onnx"

    def unavailable(self, target: Target) -> str | None:
        return missing_provider(target)

    def settings(
        self, target: Target, cpu_flags: list[str], thread_counts: tuple[int, ...]
    ) -> list[SessionSettings]:
        # On a GPU the host threads only launch kernels: ONNX Runtime's default will do.
        if target.is_gpu or not thread_counts:
            return [SessionSettings()]
        return [SessionSettings(intra_op_threads=n) for n in thread_counts]

    def open(self, artifact: Path, target: Target, settings: SessionSettings) -> OnnxSession:
        return OnnxSession(open_session(Path(artifact), target, settings), target, settings)

    def sweep(
        self, artifact: Path, settings: tuple[SessionSettings, ...]
    ) -> tuple[SessionSettings, ...]:
        """The thread settings, plus the parallel executor (one inter-op thread per
        independent heavy branch, up to the cores) where the graph has such branches and
        the CPU more than one core (GPU settings leave threads to ONNX Runtime); sequential execution is faster everywhere else."""
        cores = max((s.intra_op_threads for s in settings), default=0)
        if cores < 2:
            return settings
        branches = parallel_branches(Path(artifact))
        if branches < 2:
            return settings
        parallel = SessionSettings(
            intra_op_threads=cores, inter_op_threads=min(branches, cores), parallel=True
        )
        return (*settings, parallel)

    def operator_profile(
        self,
        artifact: Path,
        target: Target,
        feeds: dict[str, np.ndarray],
        settings: SessionSettings,
    ) -> list[dict[str, object]]:
        from hardware.op_profile import operator_profile

        return operator_profile(Path(artifact), target, feeds, settings)
