"""Paper estimate of scale-out on a Ray cluster, from measured per-variant times.

Runs `optimize run` on the bundled models (the digits CNN; ResNet-18 and MiniLM with
--models), reads each report.json, splits the run's seconds into what runs on the driver
(loading, reference outputs, export, diagnosis, writing), what builds variants (pass
steps, anywhere on a cluster) and what measures them (screening, timing, contests; only on
nodes of the run's hardware class, one at a time per node), and projects those per-variant
figures onto a fleet: 1,000 models × 30 variants × 4 hardware classes on N nodes, a
quarter of them per class, each model and class run into its own output folder.

    .venv/bin/python benchmarks/scale_out.py [--models digits resnet18 minilm]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench_info import git_revision, machine_line

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench" / "scale_out"
RESULTS = Path(__file__).parent / "results" / "scale_out.md"
MODELS, VARIANTS, CLASSES = 1000, 30, 4
FLEETS = (4, 16, 64, 256)
# Stages on the driver; every other stage measures, less the build steps inside it.
DRIVER_STAGES = ("loading the model", "reference outputs of the original model", "diagnosis")


@dataclass
class PerVariant:
    """One run's seconds: per variant built, per candidate measured, and on the driver."""

    name: str
    built: int
    measured: int
    build_s: float
    measure_s: float
    driver_s: float


def _save(model: str) -> tuple[Path, list[str]]:
    """The model file and the data flags its run takes, saved as the other benchmarks do."""
    BUILD.mkdir(parents=True, exist_ok=True)
    if model == "digits":
        save = [sys.executable, "examples/save_example.py", "digits", str(BUILD)]
        subprocess.run(save, check=True, cwd=ROOT)
        return BUILD / "digits_cnn.pt2", ["--eval-data", str(BUILD / "digits_cnn_eval.npz")]
    if model == "resnet18":
        from resnet18_model import save_resnet18

        return save_resnet18(BUILD / "resnet18.pt2"), []
    from minilm_model import save_data, save_model

    minilm, tokenizer, _ = save_model(BUILD, seq_len=128)
    eval_path, calibration_path = save_data(tokenizer, BUILD, seq_len=128)
    return minilm, ["--eval-data", str(eval_path), "--calibration-data", str(calibration_path)]


def per_variant(name: str, report: dict) -> PerVariant:
    """The split of one report's seconds (see the module docstring)."""
    stages = report["stage_seconds"]
    built = [v for v in report["variants"] if not v.get("cached") and v.get("steps")]
    steps = [s for v in built for s in v["steps"][-1:]]
    export_s = sum(s["seconds"] for s in steps if s["name"] == "export")
    build_s = sum(s["seconds"] for s in steps) - export_s
    driver_s = sum(stages.get(s, 0.0) for s in DRIVER_STAGES) + export_s
    measuring = sum(stages.values()) - driver_s - build_s
    measured = sum(1 for v in report["variants"] if v.get("measurements"))
    return PerVariant(
        name,
        max(len(steps), 1),
        max(measured, 1),
        build_s / max(len(steps) - (export_s > 0), 1),
        measuring / max(measured, 1),
        driver_s,
    )


def fleet_rows(figures: PerVariant) -> list[str]:
    """Hours, node-hours and the bottleneck for each fleet size."""
    rows = []
    for nodes in FLEETS:
        per_class = nodes / CLASSES
        walls = {
            # Only a class's own nodes measure its variants, one at a time per node.
            "measuring": MODELS * VARIANTS * figures.measure_s / per_class,
            # Each class's run builds in its own output folder (figures are kept per folder).
            "building": MODELS * VARIANTS * CLASSES * figures.build_s / nodes,
            # One run per model and class; its driver exports and keeps the reference.
            "drivers": MODELS * CLASSES * figures.driver_s / nodes,
        }
        bottleneck = max(walls, key=walls.get)
        hours = walls[bottleneck] / 3600
        rows.append(
            f"| {figures.name} | {nodes} | {hours:,.1f} | {nodes * hours:,.0f} | {bottleneck} "
            f"({', '.join(f'{k} {v / 3600:,.1f} h' for k, v in walls.items())}) |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["digits"], choices=["digits", "resnet18", "minilm"]
    )
    args = parser.parse_args()
    measured: list[PerVariant] = []
    environment = {}
    for model in args.models:
        path, flags = _save(model)
        out = BUILD / f"{model}_out"
        shutil.rmtree(out, ignore_errors=True)  # a cold run: every build and figure taken
        command = [sys.executable, "-m", "optimize", "run", str(path), "--out", str(out)]
        subprocess.run([*command, *flags, "-q"], cwd=ROOT, check=True)
        report = json.loads((out / "report.json").read_text())
        environment = report["environment"]
        measured.append(per_variant(model, report))
    lines = [
        "# Scale-out estimate",
        "",
        f"`.venv/bin/python benchmarks/scale_out.py --models {' '.join(args.models)}`: each "
        "model's `optimize run` on this machine, its seconds split by where they would run "
        f"on a cluster, projected onto {MODELS:,} models × {VARIANTS} variants × {CLASSES} "
        "hardware classes, a quarter of the nodes per class.",
        "",
        machine_line(environment, git_revision()),
        "",
        "| model | variants built | build s / variant | candidates measured | "
        "measure s / candidate | driver s / run |",
        "|---|---|---|---|---|---|",
        *(
            f"| {m.name} | {m.built} | {m.build_s:.2f} | {m.measured} | {m.measure_s:.2f} | "
            f"{m.driver_s:.1f} |"
            for m in measured
        ),
        "",
        "| model | nodes | hours | node-hours | bottleneck (each part's hours alone) |",
        "|---|---|---|---|---|",
        *(row for m in measured for row in fleet_rows(m)),
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
