"""Benchmark: fp32 against each lower precision (int8 dynamic and static, fp16, int4) on the
example models, at batch 1 and batch 32."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

from bench_info import git_revision, machine_line

from hardware.detect import describe_host
from optimize.api import run
from optimize.build.variant import Variant
from optimize.config.chains import Chain, int8_scheme
from optimize.config.recipe import Recipe
from optimize.report.results import Results
from passes.fp16 import Float16
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_int4 import QuantizeInt4
from passes.quantize_static import QuantizeStatic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
MODELS = {"digits": "digits_cnn", "transformer": "tiny_transformer"}

HEADER = [
    "model",
    "variant",
    "p50 batch 1 ms (spread)",
    "speed-up b1",
    "p50 batch 32 ms (spread)",
    "speed-up b32",
    "size MB",
    "fidelity",
    "verdict",
]


def precision_chains(reduce_range: bool) -> list[Chain]:
    """fp32 and one chain per precision, int8 in the scheme this CPU runs fast."""
    return [
        Chain((), "fp32: the exported model"),
        Chain(
            (QuantizeDynamic(reduce_range=reduce_range),),
            "int8 weights, activations quantized per run",
        ),
        Chain((QuantizeStatic("minmax", reduce_range=reduce_range),), "QDQ int8, min-max"),
        Chain((Float16(),), "float16 weights and arithmetic"),
        Chain((QuantizeInt4(),), "int4 MatMul weights (MatMulNBits)"),
    ]


def save_examples(scratch: Path) -> None:
    """The example models and their data, as examples/save_example.py writes them."""
    spec = importlib.util.spec_from_file_location("save_example", ROOT / "examples/save_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for key in MODELS:
        module.EXAMPLES[key](scratch)


def _timing(m: dict, key: str) -> str:
    return f"{m[key]['p50_ms']:.3f} ({100 * m[key]['spread']:.0f}%)"


def _fidelity(variant: Variant) -> str:
    f = variant.fidelity.to_dict()
    text = f"cosine {f['mean_cosine']:.5f}"
    if f.get("accuracy") is not None:
        text += f", accuracy {100 * f['accuracy']:.2f}% (fp32 {100 * f['reference_accuracy']:.2f}%)"
    return text


def rows(model: str, results: Results, chains: list[Chain]) -> list[list[str]]:
    """One table row per chain: its last variant against the fp32 export."""
    by_label = {v.label: v for v in results.variants}
    labels = [" → ".join(["export", *(p.label() for p in c.passes)]) for c in chains]
    fp32 = by_label[labels[0]]
    base = fp32.measurements.to_dict()
    out = []
    for label in labels:
        variant = by_label.get(label)
        name = label.removeprefix("export → ") if label != "export" else "fp32"
        if variant is None or not variant.measurements:
            reason = f"{variant.status}: {variant.reason}" if variant else "not built"
            out.append([model, name, "–", "–", "–", "–", "–", "–", reason])
            continue
        m = variant.measurements.to_dict()
        b1 = base["latency"]["p50_ms"] / m["latency"]["p50_ms"]
        b32 = base["throughput_timing"]["p50_ms"] / m["throughput_timing"]["p50_ms"]
        out.append(
            [
                model,
                name,
                _timing(m, "latency"),
                f"{b1:.2f}×",
                _timing(m, "throughput_timing"),
                f"{b32:.2f}×",
                f"{m['size_mb']:.3f}",
                _fidelity(variant),
                "within" if variant.within_tolerance else f"outside: {variant.verdict}",
            ]
        )
    return out


def report(table: list[list[str]], env: dict, command: str, wall_s: float, s: float) -> str:
    """results/precisions.md: the command, the machine, how to read the table, the table."""
    lines = [
        "# Precisions on the example models",
        "",
        f"Command: `{command}` (wall time {wall_s / 60:.1f} min)",
        "",
        machine_line(env, git_revision()),
        "",
        "Models and data from examples/save_example.py: the digits CNN (trained for seconds; "
        "held-out digits with labels, so the verdict is a top-1 accuracy drop of at most 1 "
        "point) and the tiny transformer encoder (seeded random features, no labels, so the "
        "verdict is a mean output cosine of at least 0.999). Each precision is one pass on "
        "the fp32 export, without the accuracy fallback. "
        f"Timing budget {s:g} s per measurement (at most 2000 runs); each variant is measured under each "
        "thread setting the run tries and its fastest at batch 1 is shown.",
        "",
        "p50 in ms with the spread (inter-quartile range over the median) in brackets; "
        "batch 32 is the time of one batch of 32 (the run's throughput timing). Speed-ups are "
        "fp32's p50 over the variant's. The machine was shared with other work: read "
        "differences under the spread as noise.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(row) + " |" for row in table),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scratch", type=Path, default=Path("build/bench/precisions"))
    parser.add_argument("--results", type=Path, default=RESULTS / "precisions.md")
    # Sub-millisecond models reach the timing loop's cap on runs (TimingBudget.max_runs)
    # well before this: the budget matters for the batch-32 timings.
    parser.add_argument("--measure-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    args.scratch.mkdir(parents=True, exist_ok=True)
    save_examples(args.scratch)
    scheme = int8_scheme(describe_host(include_gpus=False).cpu_flags)
    chains = precision_chains(scheme.reduce_range)
    measure = {
        "seconds": args.measure_seconds,
        # The table compares precisions of the ONNX model; PyTorch's own rows are elsewhere.
        "torch_runtimes": False,
        # Fresh figures on every run, not an earlier run's.
        "reuse": False,
        # The table gives every precision's accuracy, the slow ones' too.
        "time_in_full": "all",
    }
    table: list[list[str]] = []
    env: dict = {}
    for stem in MODELS.values():
        print(f"{stem} ...", flush=True)
        recipe = Recipe(
            model=args.scratch / f"{stem}.pt2",
            out=args.scratch / "optimized" / stem,
            data={
                "eval": args.scratch / f"{stem}_eval.npz",
                "calibration": args.scratch / f"{stem}_calibration.npz",
            },
            chains=chains,
            builtin=False,
            measure=measure,
            search={"fallback": False},
        )
        results = run(recipe)
        table += rows(stem, results, chains)
        env = results.environment
    command = " ".join([".venv/bin/python", *sys.argv])
    text = report(table, env, command, time.perf_counter() - started, args.measure_seconds)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
