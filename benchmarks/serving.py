"""Benchmark: the serving hand-off on the demo's digits CNN and the MiniLM encoder.

Each case runs `optimize run` (reusing the folder's earlier work when there is any), then
`optimize serve-bench --through-server` with an SLO and a price, and checks what a team
deploying the pick relies on: config.pbtxt parses with Triton's own protobuf, kserve.yaml
parses, the sweep has four concurrency levels or more with throughput and p99, the
recommendation meets the SLO, and the cost of a million requests is given.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from bench_info import git_revision, machine_line
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
OPTIMIZE = [sys.executable, "-m", "optimize"]
PRICE_PER_HOUR = 0.10  # about what a 2-vCPU cloud machine costs


def optimize(args: list[str], allowed: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """Wall seconds and stdout of `optimize args`; stops the benchmark when it fails."""
    start = time.perf_counter()
    done = subprocess.run([*OPTIMIZE, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode not in allowed:
        sys.exit(f"optimize {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return time.perf_counter() - start, done.stdout


def checks(out: Path, slo_ms: float) -> dict[str, bool]:
    """What the serving hand-off promises, each checked on the files written."""
    (config_path,) = out.glob("serving/triton/*/config.pbtxt")
    text_format.Parse(config_path.read_text(), model_config_pb2.ModelConfig())
    manifest = yaml.safe_load((out / "serving" / "kserve.yaml").read_text())
    sweeps = json.loads((out / "serving" / "load_sweep.json").read_text())["sweeps"]
    local = sweeps[0]
    levels = {}
    for point in local["points"]:
        if point["mode"] == "closed" and point["requests"]:
            levels.setdefault(point["setup"]["label"], []).append(point)
    best = local["recommended"]
    return {
        "config.pbtxt parses with Triton's protobuf": True,
        "kserve.yaml parses": manifest["kind"] == "InferenceService",
        "≥ 4 concurrency levels with throughput and p99": max(map(len, levels.values())) >= 4,
        "recommendation meets the SLO": best is not None and best["p99_ms"] <= slo_ms,
        "cost per million given": local["cost_per_million"] is not None,
        "server round trip matches": len(sweeps) > 1 and sweeps[1]["round_trip_error"] < 1e-3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scratch", type=Path, default=ROOT / "build" / "bench" / "serving")
    parser.add_argument("--results", type=Path, default=RESULTS / "serving.md")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from minilm_model import save_data, save_model

    args.scratch.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "examples/save_example.py", "digits", str(args.scratch)],
        check=True,
        cwd=ROOT,
    )
    minilm, tokenizer, _ = save_model(args.scratch, seq_len=128)
    eval_path, calibration_path = save_data(tokenizer, args.scratch, seq_len=128)
    cases = [
        ("digits CNN", args.scratch / "digits_cnn.pt2", [], 5.0),
        (
            "MiniLM seq 128",
            minilm,
            ["--eval-data", str(eval_path), "--calibration-data", str(calibration_path)],
            50.0,
        ),
    ]
    sections, environment = [], None
    for name, model, flags, slo_ms in cases:
        out = args.scratch / model.stem
        print(f"{name}: optimize run", flush=True)
        optimize(["run", str(model), "--out", str(out), *flags])
        print(f"{name}: serve-bench", flush=True)
        seconds, _ = optimize(
            [
                "serve-bench",
                str(out),
                "--slo-p99-ms",
                str(slo_ms),
                "--price-per-hour",
                str(PRICE_PER_HOUR),
                "--seconds",
                "1",
                "--through-server",
            ],
            allowed=(0, 1),
        )
        environment = environment or json.loads((out / "report.json").read_text())["environment"]
        plot = RESULTS / f"serving_{model.stem}.png"
        shutil.copyfile(out / "serving" / "load_sweep.png", plot)
        verdicts = checks(out, slo_ms)
        sweep_table = (out / "serving" / "load_sweep.md").read_text().split("\n", 2)[2]
        sections += [
            f"## {name} (SLO p99 ≤ {slo_ms:g} ms, ${PRICE_PER_HOUR:.2f} per hour; sweep took {seconds:.0f} s)",
            "",
            *[f"- {'yes' if ok else '**no**'}: {check}" for check, ok in verdicts.items()],
            "",
            f"![throughput against p99]({plot.name})",
            "",
            sweep_table,
        ]
    text = "\n".join(
        [
            "# Serving hand-off",
            "",
            f"`.venv/bin/python {' '.join(sys.argv)}`, on a machine otherwise idle.",
            "",
            machine_line(environment, git_revision()),
            "",
            *sections,
        ]
    )
    args.results.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
