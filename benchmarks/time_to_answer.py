"""Benchmark: how long `optimize run` takes to answer on this machine, as a user runs it.

Each case is the real command in a subprocess, timed by the wall clock: cold into a new
folder, then again into the same folder with nothing changed, and the dry-run's estimate
beside it. Cases: the demo's digits CNN with no flags; the MiniLM sentence encoder at
sequence length 128 with its data; a ResNet-18 and a ResNet-50 with no flags; the ResNet-18
under --budget-minutes 1, its pick against the unbudgeted run's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench_info import git_revision, machine_line

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
OPTIMIZE = [sys.executable, "-m", "optimize"]


@dataclass
class Case:
    """One command to time: its model and flags, and the goals it is held to."""

    name: str
    folder: str
    model: Path
    flags: list[str]
    cold_goal_s: float | None
    budget_s: float | None = None
    # The folder of the case whose pick this one's is held against (a budgeted run's).
    reference: str | None = None


@dataclass
class Timed:
    """What one case took: cold, re-run, the dry-run's estimate, the stages, the pick."""

    case: Case
    cold_s: float
    rerun_s: float
    estimate_s: float
    stages: dict[str, float]
    pick: str
    pick_ms: float
    writing_s: float


def timed_run(args: list[str], gains: Path) -> tuple[float, str]:
    """Wall seconds and stdout of `optimize` with `args`, keeping the expected gains of
    chains in `gains`; fails loudly when it fails."""
    env = {**os.environ, "OPTIMIZE_CACHE_DIR": str(gains)}
    start = time.perf_counter()
    done = subprocess.run([*OPTIMIZE, *args], capture_output=True, text=True, cwd=ROOT, env=env)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"optimize {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return took, done.stdout


def estimate_seconds(dry_run_text: str) -> float:
    """The dry-run's time estimate, in seconds."""
    found = re.search(r"time: roughly (\d+(?:\.\d+)?) (s|min)", dry_run_text)
    if not found:
        sys.exit(f"no estimate in the dry-run:\n{dry_run_text}")
    return float(found[1]) * (60 if found[2] == "min" else 1)


def writing_seconds(stdout: str) -> float:
    """How long writing the outputs took, from the run's progress lines."""
    found = re.search(r"writing the outputs: done in (\d+\.\d) s", stdout)
    return float(found[1]) if found else 0.0


def time_case(case: Case, scratch: Path) -> Timed:
    """Cold run into a new folder, as a new user's first run (no gains kept from earlier
    runs), the re-run into it, and the dry-run's estimate."""
    out, gains = scratch / case.folder, scratch / f"{case.folder}-gains"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(gains, ignore_errors=True)
    args = ["run", str(case.model), "--target", "cpu", "--out", str(out), *case.flags]
    _, plan = timed_run([*args, "--dry-run"], gains)
    print(f"{case.name}: cold run", flush=True)
    cold_s, stdout = timed_run(args, gains)
    # Its lines, each unit of work timed, show where the time went beyond the stage table.
    (scratch / f"{case.folder}-cold.log").write_text(stdout)
    report = json.loads((out / "report.json").read_text())
    picked = next(v for v in report["variants"] if v["id"] == report["pick"])
    print(f"{case.name}: {cold_s:.1f} s cold; re-run", flush=True)
    rerun_s, rerun_stdout = timed_run(args, gains)
    (scratch / f"{case.folder}-rerun.log").write_text(rerun_stdout)
    return Timed(
        case,
        cold_s,
        rerun_s,
        estimate_seconds(plan),
        report["stage_seconds"],
        picked["label"],
        picked["measurements"]["latency"]["p50_ms"],
        writing_seconds(stdout),
    )


def prepare_cases(scratch: Path) -> list[Case]:
    """Save the four models (and MiniLM's data) under `scratch`."""
    from minilm_model import save_data, save_model
    from resnet18_model import save_resnet18
    from resnet50_model import save_resnet50

    subprocess.run(
        [sys.executable, "examples/save_example.py", "digits", str(scratch)], check=True, cwd=ROOT
    )
    minilm, tokenizer, _ = save_model(scratch, seq_len=128)
    eval_path, calibration_path = save_data(tokenizer, scratch, seq_len=128)
    resnet = save_resnet18(scratch / "resnet18.pt2")
    resnet50 = save_resnet50(scratch / "resnet50.pt2")
    minilm_flags = ["--eval-data", str(eval_path), "--calibration-data", str(calibration_path)]
    return [
        Case("digits CNN, no flags", "digits", scratch / "digits_cnn.pt2", [], 15.0),
        Case("MiniLM seq 128, with its data", "minilm", minilm, minilm_flags, 100.0),
        Case("ResNet-18, no flags", "resnet18", resnet, [], 120.0),
        Case("ResNet-50, no flags", "resnet50", resnet50, [], 120.0),
        Case(
            "ResNet-18, --budget-minutes 1",
            "resnet18_budget",
            resnet,
            ["--budget-minutes", "1"],
            None,
            60.0,
            reference="resnet18",
        ),
    ]


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def table(results: list[Timed]) -> list[str]:
    """The results table, one row per case, each goal with whether it was met."""
    lines = [
        "| case | pick | cold s | goal | re-run s | re-run / cold (goal ≤ 10%) "
        "| dry-run estimate s | estimate / cold (goal within 30%) "
        "| pick's p50 against the unbudgeted run's (goal ≤ 1.3×) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_folder = {r.case.folder: r for r in results}
    for r in results:
        if r.case.budget_s:
            limit = 1.1 * r.case.budget_s + r.writing_s
            goal = f"≤ {limit:.1f} (1.1 × budget + {r.writing_s:.1f} s writing): "
            goal += verdict(r.cold_s <= limit)
        else:
            goal = f"≤ {r.case.cold_goal_s:g}: {verdict(r.cold_s <= r.case.cold_goal_s)}"
        rerun = r.rerun_s / r.cold_s
        estimate = r.estimate_s / r.cold_s
        lines.append(
            f"| {r.case.name} | `{r.pick}` | {r.cold_s:.1f} | {goal} | {r.rerun_s:.1f} "
            f"| {100 * rerun:.0f}%: {verdict(rerun <= 0.10)} | {r.estimate_s:.0f} "
            f"| {estimate:.2f}: {verdict(0.7 <= estimate <= 1.3)} "
            f"| {against_reference(r, by_folder.get(r.case.reference or ''))} |"
        )
    return lines


def against_reference(timed: Timed, reference: Timed | None) -> str:
    """The pick's p50 over that of the case it is held against, with the verdict."""
    if reference is None:
        return "–"
    ratio = timed.pick_ms / reference.pick_ms
    return f"{ratio:.2f}× ({timed.pick_ms:.2f} against {reference.pick_ms:.2f} ms): " + verdict(
        ratio <= 1.3
    )


def stage_table(results: list[Timed]) -> list[str]:
    """Seconds per stage of each cold run, from its report.json."""
    names = list(dict.fromkeys(name for r in results for name in r.stages))
    lines = ["| stage | " + " | ".join(r.case.name for r in results) + " |"]
    lines.append("|---|" + "---|" * len(results))
    for name in names:
        cells = [f"{r.stages[name]:.1f}" if name in r.stages else "–" for r in results]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scratch", type=Path, default=ROOT / "build" / "bench" / "answer")
    parser.add_argument("--results", type=Path, default=RESULTS / "time_to_answer.md")
    args = parser.parse_args()
    revision = git_revision()
    args.scratch.mkdir(parents=True, exist_ok=True)
    results = [time_case(case, args.scratch) for case in prepare_cases(args.scratch)]
    environment = json.loads((args.scratch / results[0].case.folder / "report.json").read_text())[
        "environment"
    ]
    text = "\n".join(
        [
            "# Time to answer",
            "",
            f"`.venv/bin/python {' '.join(sys.argv)}`, on a machine otherwise idle. "
            "Each case is the `optimize run` command in a subprocess, timed by the wall "
            "clock from start to exit: cold into a new folder with no expected gains kept from "
            "earlier runs, then again into the same "
            "folder with nothing changed; the dry-run's estimate is for the cold run.",
            "",
            machine_line(environment, revision),
            "",
            *table(results),
            "",
            "Seconds per stage of each cold run (`stage_seconds` in report.json; writing the "
            "outputs comes after):",
            "",
            *stage_table(results),
            "",
        ]
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
