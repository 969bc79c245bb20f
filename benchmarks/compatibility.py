"""The compatibility suite in full: every architecture of tests/compat/zoo.py in every save
form, run through `optimize run` with its built-in chains, the best ONNX variant checked
against the original on fresh inputs. Writes benchmarks/results/compatibility.md: one row
per cell with its outcome, the pick, its speed-up over the baseline and the wall time, or
the one-line reason a cell did not succeed.

  .venv/bin/python benchmarks/compatibility.py                 # published sizes
  .venv/bin/python benchmarks/compatibility.py --size tiny     # the test configs, quickly
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The root first: tests/optimize would otherwise shadow the package as a namespace.
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "compat"), str(ROOT / "tests")]

from bench_info import git_revision, machine_line  # noqa: E402
from cells import CellResult, run_cell  # noqa: E402
from figures import QUICK_MEASURE  # noqa: E402
from zoo import ARCHITECTURES, FORMS  # noqa: E402

from hardware.detect import describe_host  # noqa: E402
from optimize.config.chains import Chain  # noqa: E402
from optimize.store import write_text_atomic  # noqa: E402
from passes.ort_graph import OrtGraphOptimize  # noqa: E402

RESULTS = Path(__file__).parent / "results"

# Failures of the savers themselves, outside this tool: what each means.
UPSTREAM = {
    "Failed to get source for": (
        "transformers' models can be traced but not scripted: torch.jit.script cannot read "
        "their configs' source (huggingface/transformers#5067, closed as won't fix)"
    ),
    "object has no attribute 'last_hidden_state'": (
        "transformers 5's task heads (image classifiers, GPT-2's LM head) fail with "
        "return_dict=False, which tracing needs: torch's TorchScript exporter cannot write "
        "the dicts (prim::DictConstruct) a traced ModelOutput becomes"
    ),
    "got multiple values for argument 'use_cache'": (
        "torch's TorchScript-based ONNX exporter calls transformers 5's BertModel in a way "
        "its forward rejects; torch's dynamo exporter takes it"
    ),
    "'aten::diff'": (
        "torch's TorchScript-based ONNX exporter has no conversion for aten::diff, which "
        "transformers' GPT-2 uses, and takes no new operators (pytorch/pytorch#108975); "
        "torch's dynamo exporter takes it"
    ),
}


def table(cells: list[CellResult]) -> list[str]:
    """The results as a Markdown table, one row per cell."""
    lines = [
        "| architecture | save form | outcome | pick | speed-up | best.onnx cosine | wall s | reason |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        known = [why for text, why in UPSTREAM.items() if text in c.reason]
        reason = f"{c.reason} ({known[0]})" if known else c.reason
        cosine = f"{c.cosine:.6f}" if c.cosine is not None else "–"
        pick = f"`{c.pick}`" if c.pick else "–"
        lines.append(
            f"| {c.architecture} | {c.form} | {c.outcome} | {pick} | {c.speedup or '–'} | "
            f"{cosine} | {c.wall_s:.1f} | {reason.replace('|', '/') or '–'} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=("tiny", "full"), default="full")
    parser.add_argument("--scratch", type=Path, default=Path("build/bench/compatibility"))
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="architectures to run")
    parser.add_argument("--forms", nargs="*", default=list(FORMS), help="save forms to run")
    parser.add_argument("--budget-minutes", type=float, default=3.0, help="per cell")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one graph-optimization chain and short timings, as the tests run it",
    )
    args = parser.parse_args(argv)
    if args.quick:
        settings = {
            "chains": [Chain((OrtGraphOptimize("basic"),), "folded")],
            "builtin": False,
            "measure": QUICK_MEASURE,
        }
        how = "one graph-optimization chain, short timings"
    else:
        settings = {
            "search": {"budget_minutes": args.budget_minutes},
            "measure": {"torch_runtimes": False},
        }
        how = (
            f"built-in chains, {args.budget_minutes:g} min search budget per cell, PyTorch rows off"
        )
    results = args.results or RESULTS / f"compatibility_{args.size}.md"
    start = time.perf_counter()
    cells = []
    for name in args.only or list(ARCHITECTURES):
        for form in args.forms:
            scratch = args.scratch / args.size / name / form
            cell = run_cell(name, form, args.size, scratch, **settings)
            print(
                f"{name:>16} {form:<22} {cell.outcome:<12} {cell.wall_s:7.1f} s  "
                f"{cell.pick or cell.reason}",
                flush=True,
            )
            cells.append(cell)
    minutes = (time.perf_counter() - start) / 60
    succeeded = sum(c.outcome == "ok" for c in cells)
    text = "\n".join(
        [
            f"# Compatibility: {len(ARCHITECTURES)} architectures × save forms ({args.size})",
            "",
            f"Command: `.venv/bin/python benchmarks/compatibility.py {' '.join(sys.argv[1:])}` "
            f"(wall time {minutes:.1f} min; {how})",
            "",
            machine_line(describe_host(include_gpus=False).to_dict(), git_revision()),
            "",
            f"{succeeded} of {len(cells)} cells succeed. A cell succeeds when `optimize run` "
            "picks a variant and the saved best.onnx matches the original (cosine ≥ 0.999 on "
            "every output) on three fresh rows.",
            "",
            *table(cells),
            "",
        ]
    )
    write_text_atomic(results, text)
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
