"""A language model's pick handed to serving: the folder (or GGUF file) its runtime loads,
copied under <runtime>/ with the tokenizer it carries, and pick.json with the runtime, its
settings, the generation figures and the code that loads it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hardware.runtimes.base import RuntimeName
from optimize.build.variant import Candidate
from optimize.report.results import Results
from optimize.serve.pick_json import ServedPick
from optimize.store import copy_atomic

# How to load each runtime's pick and generate, in three lines; {model} is its path in the
# output folder, {threads} the threads it was fastest with.
LOADING_CODE = {
    RuntimeName.OPENVINO_GENAI: (
        "import openvino_genai\n"
        "pipe = openvino_genai.LLMPipeline('{model}', 'CPU', {properties})\n"
        "print(pipe.generate('Hello', max_new_tokens=64))"
    ),
    RuntimeName.ONNXRUNTIME_GENAI: (
        "import onnxruntime_genai as og\n"
        "model = og.Model('{model}'); tokens = og.Tokenizer(model); gen = og.Generator(model, "
        "og.GeneratorParams(model))\n"
        "gen.append_tokens(tokens.encode('Hello')); [gen.generate_next_token() for _ in range(64)]"
    ),
    RuntimeName.LLAMA_CPP: (
        "from llama_cpp import Llama\n"
        "llm = Llama('{model}', n_threads={threads})\n"
        "print(llm('Hello', max_tokens=64)['choices'][0]['text'])"
    ),
    RuntimeName.TRANSFORMERS_LM: (
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "model = AutoModelForCausalLM.from_pretrained('{model}'); tok = "
        "AutoTokenizer.from_pretrained('{model}')\n"
        "print(tok.decode(model.generate(**tok('Hello', return_tensors='pt'), "
        "max_new_tokens=64)[0]))"
    ),
}


def write_generative_pick(results: Results) -> tuple[ServedPick, list[Path]]:
    """Copy the pick's model to <runtime>/ in the output folder; the pick as pick.json
    records it, and every file written."""
    pick = results.pick
    source = pick.path
    folder = results.out_dir / str(pick.runtime)
    shutil.rmtree(folder, ignore_errors=True)
    copy = folder / source.name
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    written = []
    for file in files:
        target = copy if source.is_file() else copy / file.relative_to(source)
        copy_atomic(file, target)
        written.append(target)
    settings = dict(pick.measurements.settings)
    artifact = str(copy.relative_to(results.out_dir))
    return (
        ServedPick(
            out_dir=results.out_dir,
            runtime=str(pick.runtime),
            artifact=artifact,
            label=pick.label,
            settings=settings,
            providers=pick.measurements.providers,
            inputs=[{"name": "prompt", "dtype": "string", "dims": ["batch"]}],
            outputs=[{"name": "text", "dtype": "string", "dims": ["batch"]}],
            figures=_figures(results, settings),
            target=results.target,
            source=str(results.source_path),
            source_form=results.source_form,
            source_task="text-generation",
            best_onnx=None,
            best_onnx_label=None,
            loading_code=_loading_code(pick, artifact, settings),
            prompt_ids=list(results.eval_data.get("prompt_ids", [])),
        ),
        written,
    )


def _loading_code(pick: Candidate, artifact: str, settings: dict[str, Any]) -> str:
    properties = {}
    if settings.get("threads"):
        properties["INFERENCE_NUM_THREADS"] = settings["threads"]
    for key, name in (
        ("precision", "INFERENCE_PRECISION_HINT"),
        ("kv_cache", "KV_CACHE_PRECISION"),
    ):
        if settings.get(key) not in (None, "default"):
            properties[name] = settings[key]
    return LOADING_CODE.get(pick.runtime, "").format(
        model=artifact, threads=settings.get("threads", 0), properties=properties
    )


def _figures(results: Results, settings: dict[str, Any]) -> dict[str, Any]:
    """The pick's generation figures: time per output token and tokens/s at one stream,
    time to first token by prompt length, the aggregate rate of concurrent streams,
    memory, and its perplexity beside the original's."""
    m, f = results.pick.measurements, results.pick.fidelity
    generation = m.generation or {}
    return {
        "p50_ms": m.latency.p50_ms,
        "p99_ms": m.latency.p99_ms,
        "ms_per_token": m.latency.p50_ms,
        "tokens_per_s": generation.get("tokens_per_s"),
        "ttft_ms": {n: t["p50_ms"] for n, t in dict(generation.get("ttft", {})).items()},
        "streams": generation.get("streams"),
        "aggregate_tokens_per_s": generation.get("aggregate_tokens_per_s"),
        "throughput_per_s": m.throughput_per_s,
        "throughput_batch": m.throughput_batch,
        "peak_memory_mb": m.peak_memory_mb,
        "session_memory_mb": m.session_memory_mb,
        "cores": settings.get("threads") or results.environment.get("physical_cores") or 1,
        "metric": f.metric,
        "score": f.score,
        "reference_score": f.reference_score,
        "mean_cosine": f.mean_cosine,
    }
