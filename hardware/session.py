"""The only place ONNX Runtime sessions are opened, on a target with explicit threads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.targets import Target, TargetUnavailableError

GRAPH_LEVELS = ("disabled", "basic", "extended", "layout", "all")


@dataclass(frozen=True)
class SessionSettings:
    """How a session runs: threads and ONNX Runtime's own graph optimization level.

    intra_op_threads 0 lets ONNX Runtime pick (one per physical core). `parallel` runs
    independent branches of the graph at once, on `inter_op_threads` threads.
    """

    intra_op_threads: int = 0
    inter_op_threads: int = 1
    parallel: bool = False
    graph_level: str = "all"
    engine_cache_dir: str | None = None


def _ort_level(name: str):
    import onnxruntime as ort

    levels = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "layout": getattr(
            ort.GraphOptimizationLevel,
            "ORT_ENABLE_LAYOUT",
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        ),
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if name not in levels:
        raise ValueError(f"unknown graph level '{name}': use one of {', '.join(GRAPH_LEVELS)}")
    return levels[name]


def session_options(
    settings: SessionSettings,
    optimized_model_path: Path | None = None,
    profile_prefix: Path | None = None,
):
    """ONNX Runtime SessionOptions for `settings`; optionally saving the optimized graph,
    or recording a profile trace under `profile_prefix`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    if settings.parallel:
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    options.graph_optimization_level = _ort_level(settings.graph_level)
    options.log_severity_level = 3
    if optimized_model_path is not None:
        options.optimized_model_filepath = str(optimized_model_path)
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    return options


def missing_provider(target: Target) -> str | None:
    """Why this ONNX Runtime build cannot run on `target`, or None when it can."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if target.is_gpu and "CUDAExecutionProvider" not in target.providers(available):
        return (
            "this ONNX Runtime build has no CUDA provider "
            f"(available: {', '.join(available)}); install onnxruntime-gpu in place of onnxruntime"
        )
    return None


def open_session(
    model_path: Path,
    target: Target,
    settings: SessionSettings | None = None,
    optimized_model_path: Path | None = None,
    profile_prefix: Path | None = None,
):
    """Open an InferenceSession for `model_path` on `target`.

    Raises TargetUnavailableError when this ONNX Runtime build cannot reach the target.
    """
    import onnxruntime as ort

    settings = settings or SessionSettings()
    if reason := missing_provider(target):
        raise TargetUnavailableError(reason)
    providers = target.providers(ort.get_available_providers())
    options = session_options(settings, optimized_model_path, profile_prefix)
    return ort.InferenceSession(
        str(model_path),
        sess_options=options,
        providers=[(p, target.provider_options(p, settings.engine_cache_dir)) for p in providers],
    )


def load_problem(model_path: Path, target: Target) -> str | None:
    """Why ONNX Runtime refuses to load the model on `target`, in one line, or None when
    it loads. TensorRT is left out: building its engines is the timing's work, not a check."""
    import onnxruntime as ort

    providers = [
        p
        for p in target.providers(ort.get_available_providers())
        if p != "TensorrtExecutionProvider"
    ]
    options = session_options(SessionSettings(graph_level="disabled"))
    try:
        ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    return None


def run_session(session, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run `session` on numpy `feeds` (only the inputs it declares) and return its outputs."""
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: feeds[n] for n in names})
