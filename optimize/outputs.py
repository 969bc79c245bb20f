"""Publishing a run: best.onnx, report.json, report.md and manifest.json, each whole."""

from __future__ import annotations

from pathlib import Path

from hardware.model_files import external_data_files
from optimize.report import render_markdown
from optimize.results import Results
from optimize.store import (
    copy_atomic,
    staging_dir,
    write_json_atomic,
    write_manifest,
    write_text_atomic,
)
from passes.onnx_files import save_ir_model


def write_outputs(results: Results) -> None:
    """best.onnx, report.json, report.md and manifest.json, each written whole."""
    out = results.out_dir
    out.mkdir(parents=True, exist_ok=True)
    artifacts = [v.path for v in results.variants if v.path and v.path.is_relative_to(out)]
    for variant in results.variants:
        # Only a measured model is known to parse; a corrupt one is listed as it is.
        if variant.status == "measured" and variant.path.is_relative_to(out):
            artifacts += external_data_files(variant.path)
    for name, variant in (("best.onnx", results.pick), ("closest.onnx", results.closest)):
        if variant is not None:
            artifacts += _write_best(variant.path, out / name)
        else:
            (out / name).unlink(missing_ok=True)
            (out / f"{name}.data").unlink(missing_ok=True)
    write_json_atomic(out / "report.json", results.to_dict())
    write_text_atomic(out / "report.md", render_markdown(results))
    artifacts += [out / "report.json", out / "report.md"]
    write_manifest(out, artifacts)


def _write_best(model_path: Path, best: Path) -> list[Path]:
    """Copy a chosen model to `best`; a model with external data is re-saved (streamed,
    not loaded whole) so its weights sit in `<best>.data` beside it."""
    if not external_data_files(model_path):
        copy_atomic(model_path, best)
        return [best]
    import onnx_ir as ir

    staging = staging_dir(best.parent, best.name)
    save_ir_model(ir.load(model_path), staging / best.name, external=True)
    data = best.with_name(f"{best.name}.data")
    # Data first: a reader who sees the new best.onnx must find its weights.
    (staging / data.name).replace(data)
    (staging / best.name).replace(best)
    staging.rmdir()
    return [best, data]
