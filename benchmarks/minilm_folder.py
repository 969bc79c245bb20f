"""all-MiniLM-L6-v2 as a Hugging Face model folder: the packaged encoder saved with
save_pretrained (model and tokenizer), then `optimize run FOLDER --task feature-extraction`
as a user would type it, with tokenised sentences to evaluate and calibrate. Records the
command, the wall time, the pick and its figures against the plain export in
benchmarks/results/minilm_folder.md."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_info import git_revision, machine_line
from minilm_model import CALIBRATION_SENTENCES, EVAL_SENTENCES, load_sentence_transformer
from sentences import make_sentences

from optimize.store import write_text_atomic

RESULTS = Path(__file__).parent / "results"
SEQUENCE = 128


def save_folder(scratch: Path) -> tuple[Path, Path, Path]:
    """The encoder and its tokenizer saved as save_pretrained writes them, and tokenised
    sentences (input_ids, attention_mask, token_type_ids at SEQUENCE tokens) to evaluate
    and calibrate."""
    st_model = load_sentence_transformer()
    folder = scratch / "all-MiniLM-L6-v2"
    st_model[0].auto_model.save_pretrained(folder)
    st_model.tokenizer.save_pretrained(folder)
    sentences = make_sentences(EVAL_SENTENCES + CALIBRATION_SENTENCES)
    paths = []
    for name, chunk in (
        ("eval", sentences[:EVAL_SENTENCES]),
        ("calibration", sentences[EVAL_SENTENCES:]),
    ):
        tokens = st_model.tokenizer(
            chunk, padding="max_length", truncation=True, max_length=SEQUENCE, return_tensors="np"
        )
        arrays = {k: tokens[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
        arrays["token_type_ids"] = np.zeros_like(arrays["input_ids"])
        path = scratch / f"{name}.npz"
        np.savez(path, **arrays)
        paths.append(path)
    return folder, paths[0], paths[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scratch", type=Path, default=Path("build/bench/minilm_folder"))
    parser.add_argument("--results", type=Path, default=RESULTS / "minilm_folder.md")
    parser.add_argument("--min-cosine", type=float, default=0.99)
    args = parser.parse_args(argv)
    args.scratch.mkdir(parents=True, exist_ok=True)
    folder, eval_path, calibration_path = save_folder(args.scratch)
    out = args.scratch / "optimized"
    command = [
        "optimize", "run", str(folder), "--task", "feature-extraction", "--out", str(out),
        "--eval-data", str(eval_path), "--calibration-data", str(calibration_path),
        "--min-cosine", str(args.min_cosine), "--remeasure",
    ]  # fmt: skip
    started = time.perf_counter()
    finished = subprocess.run(
        [str(Path(sys.executable).parent / "optimize"), *command[1:]],
        capture_output=True,
        text=True,
    )
    wall_s = time.perf_counter() - started
    if finished.returncode != 0:
        sys.exit(f"optimize run failed ({finished.returncode}):\n{finished.stderr}")
    report = json.loads((out / "report.json").read_text())
    by_id = {v["id"]: v for v in report["variants"]}
    pick, export = by_id[report["pick"]], report["variants"][0]

    def figures(v: dict) -> str:
        m = v["measurements"]
        return (
            f"| `{v['label']}` | {m['latency']['p50_ms']:.3f} | {m['throughput_per_s']:,.0f} | "
            f"{v['fidelity']['mean_cosine']:.5f} | {m['size_mb']:.1f} |"
        )

    speedup = (
        export["measurements"]["latency"]["p50_ms"] / pick["measurements"]["latency"]["p50_ms"]
    )
    measured = sum(v["status"] == "measured" for v in report["variants"])
    lines = [
        "# all-MiniLM-L6-v2 from a Hugging Face model folder",
        "",
        "Command: `.venv/bin/python benchmarks/minilm_folder.py`, which saves the packaged "
        "encoder with `save_pretrained` and runs:",
        "",
        f"    {' '.join(command)}",
        "",
        machine_line(report["environment"], git_revision()),
        "",
        f"Wall time of `optimize run`: {wall_s:.0f} s, {measured} candidates measured. "
        f"Inputs inferred from the folder: {', '.join(i['name'] for i in report['source']['inputs'])}, "
        f"at sequence {SEQUENCE}; the output is the token states (feature-extraction). "
        f"Tokenizer copied: {(out / 'tokenizer').is_dir()}.",
        "",
        "| variant | p50 batch 1 ms | items/s at 32 | mean cosine | size MB |",
        "|---|---|---|---|---|",
        figures(export),
        figures(pick),
        "",
        f"**Pick**: `{pick['label']}`, {speedup:.2f}× the plain export's batch-1 speed, "
        f"within mean cosine {args.min_cosine}.",
    ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(args.results, text)
    print(text)


if __name__ == "__main__":
    main()
