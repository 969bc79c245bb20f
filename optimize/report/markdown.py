"""report.md and the terminal table: the variant table a person reads in ten seconds."""

from __future__ import annotations

from optimize.build.variant import Candidate, Variant
from optimize.report.cluster_text import cluster_headline, units_by_node
from optimize.report.contest_table import CONTEST_COLUMNS, contest_intro, contest_rows
from optimize.report.generation_table import generation_markdown
from optimize.report.results import Results
from optimize.serve.stream_report import under_load_lines
from passes.prune_magnitude import PruneMagnitude
from passes.prune_structured import PruneStructured

COLUMNS = (
    "variant",
    "status",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "runs",
    "spread",
    "threads",
    "items/s",
    "start-up ms",
    "size MB",
    "memory MB",
    "cosine",
    "top-1 agree",
    "score",
    "within tol.",
)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def score_text(score: float | None, unit_metric: bool) -> str:
    """A task metric's score: in percent for metrics scored in [0, 1], else as it is."""
    if score is None:
        return "–"
    return f"{100 * score:.2f}" if unit_metric else f"{score:.4g}"


def threads_text(settings: dict) -> str:
    """The thread setting a variant was fastest with: intra-op threads, and the inter-op
    threads of ONNX Runtime's parallel executor where that won."""
    intra = str(settings.get("intra_op_threads", settings.get("threads")))
    if settings.get("parallel"):
        return f"{intra} ×{settings['inter_op_threads']} branches"
    return intra


def variant_cells(variant: Variant, pick_id: str | None) -> dict[str, str]:
    """The table cells of `variant` by column name, marking the pick with a star."""
    name = variant.label + (" ★" if variant.id == pick_id else "")
    m, f = variant.measurements, variant.fidelity
    if not m:
        cells = dict.fromkeys(COLUMNS, "–")
        cells.update({"variant": name, "status": f"{variant.status!s}: {variant.reason}"})
        return cells
    latency = m.latency
    # Screening figures are a short timing under one thread setting: say so beside them.
    screened = variant.screened_only
    return {
        "variant": name,
        "status": f"screened: {variant.not_timed_further}" if screened else str(variant.status),
        "p50 ms": _fmt(latency.p50_ms),
        "p90 ms": _fmt(latency.p90_ms),
        "p99 ms": _fmt(latency.p99_ms),
        "runs": str(latency.runs),
        "spread": f"{100 * latency.spread:.1f}%",
        "threads": threads_text(m.settings),
        "items/s": _fmt(m.throughput_per_s, 0),
        "start-up ms": _fmt(m.startup_ms, 1),
        "size MB": _fmt(m.size_mb, 3),
        "memory MB": _fmt(m.session_memory_mb, 1),
        "cosine": _fmt(f and f.mean_cosine, 6),
        "top-1 agree": _fmt(f and f.top1_agreement, 4),
        "score": score_text(f.score, f.unit_metric) if f else "–",
        "within tol.": within_text(variant),
    }


def within_text(variant: Candidate) -> str:
    """Whether a measured candidate is within the limits, as its row says it."""
    if variant.within_tolerance:
        return "yes"
    return f"no ({variant.verdict})" if variant.outside_limits else "not judged"


def _pick_lines(results: Results) -> list[str]:
    """The report's head: the pick (or why none), the rule, the data it was judged on."""
    lines = []
    if results.pick:
        lines.append(f"**Pick:** `{results.pick.label}` → `{results.pick_file}`")
        if speedup := results.speedup:
            unit = "per output token" if results.generative else "median at batch 1"
            lines.append(
                f"({speedup.pick_ms:.3f} ms {unit}, {speedup.describe()} "
                f"`{results.baseline.label}` at {speedup.baseline_ms:.3f} ms)"
            )
        if results.pick_onnx and results.pick_onnx is not results.pick:
            lines.append(
                f"Best ONNX variant: `{results.pick_onnx.label}` → `best.onnx` "
                f"({results.pick_onnx.p50_ms:.3f} ms)"
            )
    else:
        lines.append(f"**{results.why_no_pick}.**")
        if results.closest:
            lines.append(
                f"The closest, `{results.closest.label}` ({results.closest.verdict}), is saved "
                "as `closest.onnx`: it does not meet the limit."
            )
    lines += [
        "",
        f"Rule: {results.rule}; tolerance: {results.tolerance_text}.",
    ]
    lines.append(f"Fidelity inputs: {results.eval_data['description']}.")
    if results.preprocessing:
        lines.append(
            f"Preprocessing compiled into every variant, which takes raw inputs: "
            f"{results.preprocessing}."
        )
    if metric := results.eval_data.get("metric"):
        reference = next(
            (v.fidelity for v in results.variants if v.fidelity and v.fidelity.score is not None),
            None,
        )
        original = (
            score_text(reference.reference_score, reference.unit_metric) if reference else "–"
        )
        scored = (
            "the evaluation text"
            if results.generative
            else "the labelled data (in percent for metrics scored in [0, 1])"
        )
        lines.append(f"Score: `{metric}` on {scored}; the original model scores {original}.")
    return lines


def render_markdown(results: Results) -> str:
    """report.md: the pick, the rule, warnings, the variant table and the environment."""
    lines = [f"# optimize report: {results.source_path.name} on {results.target}", ""]
    lines += _pick_lines(results)
    if said := under_load_lines(results.load_sweeps, results.stream_sweep):
        lines += ["", "## Under load", ""] + [f"- {line}" for line in said]
        lines.append(
            "- Every point: `serving/load_sweep.md`."
            if results.load_sweeps
            else "- How it was served: `serving/stream_sweep.md`."
        )
    if results.warnings:
        lines += ["", "## Warnings", ""] + [f"- ⚠ {w}" for w in results.warnings]
    lines += generation_markdown(results.variants)
    lines += ["", "## Variants", "", "| " + " | ".join(COLUMNS) + " |"]
    lines.append("|" + "---|" * len(COLUMNS))
    for variant in results.variants:
        cells = variant_cells(variant, results.pick.id if results.pick else None)
        lines.append("| " + " | ".join(cells[c].replace("|", "\\|") for c in COLUMNS) + " |")
    lines += _contest_section(results)
    lines += _repairs_section(results)
    lines += _prune_section(results)
    if results.op_profile:
        lines += [
            "",
            "## Where the pick spends its time",
            "",
            "| operator | ms per run | share | calls per run |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {row['op_type']} | {row['per_run_ms']:.4f} | {100 * row['share']:.1f}% | "
            f"{row['calls_per_run']:g} |"
            for row in results.op_profile
        ]
        lines.append("")
        lines.append(
            f"Kernel times from {results.profiler_name} at batch 1 (profiling adds "
            "overhead: read the shares, not the absolute times)."
        )
    if results.chains:
        lines += ["", "## Chains tried", ""]
        for chain in results.chains:
            lines.append(f"- {' → '.join(chain['passes']) or 'baseline'}: {chain['why']}")
    lines += [
        "",
        "Latency: batch 1, median (p50) and tail percentiles over `runs` timed runs after "
        "warm-up; spread: inter-quartile range over the median; threads: the fastest intra-op thread count of those tried, with the parallel executor's branch threads where it won (all are in report.json under thread_sweep); items/s at the throughput batch; memory: resident-memory growth of the "
        "measuring process from before the session opened to after the timed runs. Each "
        "variant is measured in a fresh process pinned to one logical CPU per physical core "
        "(report.json: pinned_cpus), where the OS allows.",
        "",
        "## Steps",
        "",
    ]
    for variant in results.model_variants:
        for step in variant.steps[-1:] if not variant.unbuilt_step else []:
            lines.append(
                f"- `{variant.id}` {variant.label}: {step.note or 'no note'} "
                f"({step.seconds:.2f} s{', unchanged' if not step.changed else ''})"
            )
    if results.cluster:
        lines += ["", "## Where it ran", "", cluster_headline(results.cluster) + ".", ""]
        by_node = units_by_node(results.cluster)
        lines += [f"- `{node}`: {'; '.join(units)}" for node, units in by_node.items()]
        lines += [] if by_node else ["- nothing: every figure was reused"]
    env = results.environment
    lines += [
        "",
        "## Environment",
        "",
        f"- CPU: {env['cpu_model']} ({env['logical_cores']} logical cores; "
        f"flags: {', '.join(env['cpu_flags']) or 'none of note'})",
        f"- Memory: {env['memory_gb']} GiB; {env['os']}; Python {env['python']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        f"- ONNX Runtime providers: {', '.join(env['ort_providers'])}",
    ]
    return "\n".join(lines) + "\n"


def _contest_section(results: Results) -> list[str]:
    """The head-to-head: the contenders' interleaved figures and how the pick was decided."""
    contest = results.contest
    if contest is None:
        return []
    lines = ["", "## Head to head", "", f"{contest_intro(contest)}:", ""]
    lines += ["| " + " | ".join(CONTEST_COLUMNS) + " |", "|" + "---|" * len(CONTEST_COLUMNS)]
    for cells in contest_rows(contest):
        lines.append("| " + " | ".join(cells[c] for c in CONTEST_COLUMNS) + " |")
    return lines


def _repairs_section(results: Results) -> list[str]:
    """The accuracy fallback: per repaired variant, each greedy step's excluded nodes,
    quality and latency."""
    if not results.repairs:
        return []
    by_id = {v.id: v for v in results.variants}
    lines = ["", "## Accuracy fallback", ""]
    for record in results.repairs:
        variant = by_id[record.variant_id]
        lines.append(
            f"**{variant.label}** was outside tolerance ({variant.verdict}): {record.note}."
        )
        if not record.steps:
            lines.append("")
            continue
        lines += [
            "",
            "| nodes in float | excluded | quality | p50 ms | verdict |",
            "|---|---|---|---|---|",
        ]
        for step in record.steps:
            stepped = by_id.get(step.variant_id)
            p50 = _fmt(stepped.p50_ms if stepped else None)
            names = ", ".join(f"`{n}`" for n in step.excluded)
            lines.append(
                f"| {len(step.excluded)} | {names} | {step.quality:.4f} | {p50} | "
                f"{step.verdict or 'within tolerance'} |"
            )
        lines.append("")
    return lines


def _prune_section(results: Results) -> list[str]:
    """The pruning sweep: each ratio with its size of model, quality and speed, and what
    magnitude pruning saves in a compressed file (not in time)."""
    sweep = results.prune_sweep
    if sweep is None:
        return []
    by_id = {v.id: v for v in results.variants}
    lines = [
        "",
        "## Pruning sweep",
        "",
        f"Structured pruning of channels and neurons at increasing ratios: {sweep.note}.",
        "",
        "| ratio | params | MACs | cosine | score | p50 ms | size MB | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sweep.rows:
        variant = by_id.get(row.variant_id) if row.variant_id else None
        metrics = _step_metrics(variant, PruneStructured.name)
        fidelity = variant.fidelity if variant else None
        lines.append(
            f"| {row.ratio:g} | {_count(metrics, 'params')} | {_count(metrics, 'macs')} | "
            f"{_fmt(fidelity.mean_cosine if fidelity else None, 6)} | "
            f"{score_text(fidelity.score, fidelity.unit_metric) if fidelity else '–'} | "
            f"{_fmt(variant.p50_ms if variant else None)} | "
            f"{_fmt(variant.size_mb if variant else None)} | "
            f"{row.verdict or 'within tolerance'} |"
        )
    for variant in results.model_variants:
        metrics = _step_metrics(variant, PruneMagnitude.name)
        if metrics:
            lines += [
                "",
                f"Magnitude pruning ({variant.label}) zeroed {100 * metrics['sparsity']:.1f}% of "
                f"the weights: the PyTorch file is {metrics['dense_mb']:.3f} MB as it is and "
                f"{metrics['compressed_mb']:.3f} MB compressed. Dense kernels still multiply the "
                f"zeros, so it runs no faster (p50 {_fmt(variant.p50_ms)} ms).",
            ]
    return lines


def _step_metrics(variant: Variant | None, pass_name: str) -> dict[str, float]:
    """The figures the named pass recorded on its step of `variant`."""
    steps = variant.steps if variant else []
    return next((s.metrics for s in steps if s.name == pass_name), {})


def _count(metrics: dict[str, float], key: str) -> str:
    """'before → after' for a parameter or MAC count, in thousands."""
    if f"{key}_after" not in metrics:
        return "–"
    return f"{metrics[f'{key}_before'] / 1e3:,.1f}k → {metrics[f'{key}_after'] / 1e3:,.1f}k"
