"""ONNX Runtime's graph optimizer at one level, saved as a model file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardware.errors import UserError
from hardware.session import SessionSettings, open_session, session_options
from hardware.targets import Target
from passes.base import Outcome, Pass, PassContext, PassError
from passes.onnx_files import needs_external_data, op_histogram

LEVELS = ("basic", "extended", "all")


@dataclass(frozen=True)
class OrtGraphOptimize(Pass):
    """Fuse and fold the graph with ONNX Runtime at `level` (basic, extended or all).

    The 'all' level adds layout changes for this machine's kernels (e.g. NCHWc on
    AVX-512 CPUs): the saved model is tied to the hardware it was made on.
    """

    name = "ort_graph"
    libraries = ("onnx", "onnxruntime")
    level: str = "extended"

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise UserError(f"ort_graph level '{self.level}': use one of {', '.join(LEVELS)}")

    def tied_to_hardware(self, target: Target) -> bool:
        # 'all' lays tensors out for this CPU's kernels; a GPU target opens its provider.
        return self.level == "all" or target.is_gpu

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        out = out_dir / "model.onnx"
        settings = SessionSettings(graph_level=self.level)
        try:
            if needs_external_data(src):
                _open_saving_external(src, out, ctx.target, settings)
            else:
                open_session(src, ctx.target, settings, optimized_model_path=out)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise PassError(f"ONNX Runtime could not optimize the model: {exc}") from exc
        before, after = op_histogram(src), op_histogram(out)
        note = f"{sum(before.values())} -> {sum(after.values())} nodes"
        if self.level == "all":
            note += "; saved with layout for this machine's kernels, rebuild on other hardware"
        return Outcome(out, changed=before != after, note=note)


def _open_saving_external(src: Path, out: Path, target: Target, settings: SessionSettings):
    import onnxruntime as ort

    options = session_options(settings, optimized_model_path=out)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", f"{out.name}.data"
    )
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    providers = target.providers(ort.get_available_providers())
    return ort.InferenceSession(str(src), sess_options=options, providers=providers)
