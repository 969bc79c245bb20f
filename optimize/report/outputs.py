"""Publishing a run: best.onnx, report.json, report.md, report.html and manifest.json, each whole."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hardware.model_files import external_data_files
from hardware.runtimes.base import RuntimeName
from hardware.runtimes.registry import RUNTIMES
from optimize.build.variant import RuntimeRow, Status
from optimize.report.charts import charts_of
from optimize.report.generative_pick import write_generative_pick
from optimize.report.html import render_html
from optimize.report.markdown import render_markdown
from optimize.report.results import Results
from optimize.report.served_pick import served_pick
from optimize.report.variant_records import write_variants_csv
from optimize.serve.bench import recommended_setup
from optimize.serve.pick_json import write_pick_json
from optimize.serve.serving_files import write_serving
from optimize.serve.stream_report import remove_stream_sweep, write_stream_sweep
from optimize.serve.sweep_report import remove_sweep, write_sweep
from optimize.source.hf_files import folder_files, tokenizer_files
from optimize.store import (
    copy_atomic,
    staging_dir,
    write_bytes_atomic,
    write_json_atomic,
    write_manifest,
    write_text_atomic,
)
from passes.onnx_files import save_ir_model


def write_outputs(results: Results) -> None:
    """best.onnx, pick.json, report.json, report.md, report.html, pareto.png and
    manifest.json, each written whole."""
    out = results.out_dir
    out.mkdir(parents=True, exist_ok=True)
    variants = results.model_variants
    artifacts = [v.path for v in variants if v.path and v.path.is_relative_to(out)]
    for variant in variants:
        # A model that failed may not parse (a corrupt one is listed as it is); a measured
        # one does, and so does one skipped for being its parent's graph again.
        path = variant.path
        parses = variant.status != Status.FAILED
        if parses and path and path.suffix == ".onnx" and path.is_relative_to(out):
            artifacts += external_data_files(path)
    for name, variant in (("best.onnx", results.pick_onnx), ("closest.onnx", results.closest)):
        if variant is not None:
            artifacts += _write_best(variant.path, out / name)
        else:
            (out / name).unlink(missing_ok=True)
            (out / f"{name}.data").unlink(missing_ok=True)
    artifacts += _write_tokenizer(results)
    runtime_model, runtime_files = _write_runtime_pick(results)
    artifacts += runtime_files
    artifact = "best.onnx" if results.pick is results.pick_onnx else None
    if runtime_model is not None:
        artifact = str(runtime_model.relative_to(out))
    served = served_pick(results, artifact) if results.pick and artifact else None
    if results.pick is not None and results.generative:
        served, generative_files = write_generative_pick(results)
        artifacts += generative_files
    artifacts += write_pick_json(out, served)
    artifacts += write_serving(out, served, recommended_setup(results.load_sweeps))
    if results.stream_sweep:
        artifacts += write_stream_sweep(results.out_dir, results.stream_sweep)
    else:
        remove_stream_sweep(results.out_dir)
    if results.load_sweeps:
        artifacts += write_sweep(results.out_dir, results.load_sweeps)
    else:
        remove_sweep(results.out_dir)
    report = results.to_dict()
    write_json_atomic(out / "report.json", report)
    artifacts.append(write_variants_csv(out, results.records()))
    write_text_atomic(out / "report.md", render_markdown(results))
    artifacts += [out / "report.json", out / "report.md"]
    artifacts += _write_html_report(results, report)
    write_manifest(out, artifacts)


def _write_html_report(results: Results, report: dict[str, Any]) -> list[Path]:
    """pareto.png, chain.png (when the pick has steps) and report.html, the page with
    every chart embedded; `report` is the run's report.json."""
    out = results.out_dir
    charts = charts_of(results, report)
    written = []
    for name, png in (("pareto.png", charts.pareto), ("chain.png", charts.chain)):
        if png:
            write_bytes_atomic(out / name, png)
            written.append(out / name)
        else:
            (out / name).unlink(missing_ok=True)
    write_text_atomic(out / "report.html", render_html(results, charts))
    return [*written, out / "report.html"]


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


TOKENIZER_FOLDER = "tokenizer"
HOW = {
    RuntimeName.TORCH: "load the model, torch.set_num_threads(threads), wrap calls in "
    "torch.inference_mode() and torch.autocast(device, dtype=autocast) unless it is "
    "float32, and torch.compile(model) when mode is 'compile'",
    RuntimeName.OPENVINO: "core = openvino.Core(); core.compile_model(core.read_model('model.xml'), "
    "'CPU', {'INFERENCE_NUM_THREADS': threads, 'INFERENCE_PRECISION_HINT': precision, "
    "'PERFORMANCE_HINT': hint, 'NUM_STREAMS': streams})",
}


def _write_runtime_pick(results: Results) -> tuple[Path | None, list[Path]]:
    """When a runtime row wins overall (PyTorch, OpenVINO): the model it ran (a file, or
    a Hugging Face folder) and the exact settings, in <runtime>/, for a serving user to
    reproduce it; the model's path and every file written."""
    pick = results.pick
    chosen = pick.runtime if isinstance(pick, RuntimeRow) else None
    for name in RUNTIMES:
        if name != chosen:
            stale_files = (f"{name}_pick.json", results.source_path.name, "model.xml", "model.bin")
            for stale in (results.out_dir / name / s for s in stale_files):
                if stale.is_dir():
                    shutil.rmtree(stale)
                else:
                    stale.unlink(missing_ok=True)
    if chosen is None:
        return None, []
    folder = results.out_dir / chosen
    if chosen == RuntimeName.TORCH:
        model = folder / results.source_path.name
        written = _copy_source(results.source_path, model)
    else:
        written = _write_openvino_ir(results.variant(pick.parent).path, folder)
        model = written[0]
    settings = results.out_dir / results.pick_file
    write_json_atomic(
        settings,
        {
            "runtime": chosen,
            "model": model.name,
            "form": results.source_form if chosen == RuntimeName.TORCH else "openvino ir",
            "inputs": [asdict(s) for s in results.inputs],
            "settings": pick.runtime_settings | pick.measurements.settings,
            "providers": pick.measurements.providers,
            "how": HOW.get(chosen, ""),
            "p50_ms": pick.p50_ms,
        },
    )
    return model, [*written, settings]


def _copy_source(source: Path, copy: Path) -> list[Path]:
    """The user's model file, or each file of their model folder, copied to `copy`."""
    if not source.is_dir():
        copy_atomic(source, copy)
        return [copy]
    # Files an earlier run copied from an older version of the folder must not linger.
    shutil.rmtree(copy, ignore_errors=True)
    written = []
    for path in folder_files(source):
        copy_atomic(path, copy / path.relative_to(source))
        written.append(copy / path.relative_to(source))
    return written


def _write_tokenizer(results: Results) -> list[Path]:
    """A Hugging Face folder's tokenizer files in tokenizer/, for whoever serves the model
    to turn text into its inputs; none (and no stale ones) for other sources."""
    folder = results.out_dir / TOKENIZER_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    if results.source_form != "hf_folder":
        return []
    written = []
    for path in tokenizer_files(results.source_path):
        copy_atomic(path, folder / path.name)
        written.append(folder / path.name)
    return written


def _write_openvino_ir(onnx_path: Path, folder: Path) -> list[Path]:
    """The ONNX file OpenVINO ran, saved as OpenVINO IR (model.xml, weights in model.bin)
    in `folder`, the weights first, so a reader who sees model.xml finds its weights."""
    import openvino as ov

    staging = staging_dir(folder, "model.xml")
    model = ov.Core().read_model(str(onnx_path))
    ov.save_model(model, str(staging / "model.xml"), compress_to_fp16=False)
    xml, weights = folder / "model.xml", folder / "model.bin"
    (staging / "model.bin").replace(weights)
    (staging / "model.xml").replace(xml)
    staging.rmdir()
    return [xml, weights]
