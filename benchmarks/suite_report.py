"""The suite's results page: the pick against each peer, the goals against OpenVINO with its
defaults, each case's rows in detail, and the notes on how they were taken."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench_info import git_revision, load_line, machine_line
from flops import PeakRate, compute_precision, of_peak
from openvino_peers import DEFAULTS, NNCF_DEFAULTS

from hardware.profile import TimingBudget
from optimize.build.variant import Variant

if TYPE_CHECKING:
    from suite import CaseResult

PEERS = ("torch eager", "torch.compile", "ONNX Runtime", DEFAULTS, NNCF_DEFAULTS, "Olive int8")
# The goals against OpenVINO with its defaults: the pick's batch-1 p50 at most this share
# of its p50, and the pick's batch-32 throughput at least this multiple of its throughput.
GOAL_LATENCY_SHARE = 0.8
GOAL_THROUGHPUT_GAIN = 1.2


def _ms(variant: Variant | None) -> float | None:
    return variant.p50_ms if variant is not None and variant.status == "measured" else None


def _speedup(peer: Variant | None, pick: Variant | None, missing: str = "–") -> str:
    peer_ms, pick_ms = _ms(peer), _ms(pick)
    if peer_ms is None or pick_ms is None:
        return missing
    return f"{peer_ms / pick_ms:.2f}×"


def quality(variant: Variant | None) -> str:
    """Top-1 accuracy beside the original's with labels, else the mean output cosine."""
    if variant is None or not variant.fidelity:
        return "–"
    f = variant.fidelity.to_dict()
    if f.get("score") is not None and f.get("reference_score") is not None:
        return f"{f['metric']} {100 * f['score']:.2f}% (original {100 * f['reference_score']:.2f}%)"
    return f"cosine {f['mean_cosine']:.5f}"


def _threads(variant: Variant) -> str:
    settings = variant.measurements.settings
    threads = settings.get("intra_op_threads", settings.get("threads", "?"))
    return "OpenVINO's" if threads == 0 else str(threads)


def goals_table(outcomes: list[CaseResult]) -> list[str]:
    """Against OpenVINO with its defaults, where the case sets goals: the pick's batch-1
    p50 over its p50, and the pick's batch-32 throughput over its throughput."""
    header = ["model", "pick", "pick b1 p50 ms", "OpenVINO defaults b1 p50 ms", "ratio"]
    header += ["goal ≤ 0.8×", "pick items/s at 32", "OpenVINO defaults items/s at 32"]
    header += ["ratio", "goal ≥ 1.2×"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for o in outcomes:
        peer, pick = o.rows[DEFAULTS], o.results.pick
        if not o.case.goals or _ms(peer) is None or _ms(pick) is None:
            continue
        latency = pick.p50_ms / peer.p50_ms
        gain = pick.measurements.throughput_per_s / peer.measurements.throughput_per_s
        cells = [
            o.case.name,
            f"`{pick.label}`",
            f"{pick.p50_ms:.3f}",
            f"{peer.p50_ms:.3f}",
            f"{latency:.2f}×",
            "met" if latency <= GOAL_LATENCY_SHARE else "**not met**",
            f"{pick.measurements.throughput_per_s:,.0f}",
            f"{peer.measurements.throughput_per_s:,.0f}",
            f"{gain:.2f}×",
            "met" if gain >= GOAL_THROUGHPUT_GAIN else "**not met**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_table(outcomes: list[CaseResult], peak: PeakRate | None) -> list[str]:
    """One line per model: the pick's speed-up over each peer, its quality, the model's
    FLOPs and the rate the pick reaches."""
    header = ["model", "pick", *(f"speed-up over {p}" for p in PEERS)]
    header += ["pick's quality", "MFLOP per sample", "pick's GFLOP/s", "of peak"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for o in outcomes:
        pick = o.results.pick
        pick_ms = _ms(pick)
        rate = o.flops / (pick_ms / 1e3) / 1e9 if pick_ms else None
        cells = [
            o.case.name,
            f"`{pick.label}`" if pick else "none within tolerance",
            *(_speedup(o.rows[p], pick) for p in PEERS[:-1]),
            _speedup(o.rows["Olive int8"], pick, o.olive or "–"),
            quality(pick),
            f"{o.flops / 1e6:.3f}",
            f"{rate:.2f}" if rate is not None else "–",
            of_peak(rate, peak, compute_precision(pick, o.results)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def detail_table(outcome: CaseResult) -> list[str]:
    """Every compared row of one model: its batch-1 latency, the pick's speed-up over it,
    its quality and verdict."""
    header = ["row", "variant", "p50 batch 1 ms (spread)", "items/s at 32", "threads"]
    header += ["pick's speed-up", "quality", "verdict"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    pick = outcome.results.pick
    for name, variant in [*outcome.rows.items(), ("pick", pick)]:
        if variant is None:
            why = outcome.olive if name == "Olive int8" else "not measured"
            lines.append(f"| {name} | – | – | – | – | – | – | {why} |")
            continue
        if variant.status != "measured":
            cells = [name, f"`{variant.label}`", "–", "–", "–", "–", "–"]
            lines.append("| " + " | ".join([*cells, f"{variant.status}: {variant.reason}"]) + " |")
            continue
        latency = variant.measurements.to_dict()["latency"]
        cells = [
            name,
            f"`{variant.label}`",
            f"{latency['p50_ms']:.3f} ({100 * latency['spread']:.0f}%)",
            f"{variant.measurements.throughput_per_s:,.0f}",
            _threads(variant),
            _speedup(variant, pick),
            quality(variant),
            "within" if variant.within_tolerance else f"outside: {variant.verdict}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(
    outcomes: list[CaseResult],
    peak: PeakRate | None,
    notes: list[str],
    command: str,
    wall_s: float,
    budget: TimingBudget,
) -> str:
    """benchmarks/results/suite.md: the command, the machine, the tables and the notes."""
    lines = [
        "# Suite: PyTorch, ONNX Runtime, OpenVINO, Olive and this tool's pick",
        "",
        f"Command: `{command}` (wall time {wall_s / 60:.1f} min)",
        "",
        machine_line(outcomes[0].results.environment, git_revision()),
        "",
        "Speed-ups are a peer's batch-1 p50 latency over the pick's: above 1× the pick is "
        "faster. The pick is the fastest variant within tolerance, PyTorch rows included.",
        "",
        *summary_table(outcomes, peak),
        "",
        "## Against OpenVINO with its defaults",
        "",
        "The goals: the pick's batch-1 p50 at most 0.8× OpenVINO's with no config on the "
        "plain export, and its batch-32 throughput at least 1.2× OpenVINO's (under "
        "OpenVINO's throughput hint, as the tool's own OpenVINO rows are timed).",
        "",
        *goals_table(outcomes),
        "",
    ]
    for o in outcomes:
        lines += [f"## {o.case.name}", "", f"{o.case.about}.", "", *detail_table(o), ""]
    lines += ["## Notes", ""]
    lines += [
        "- Tolerance: with labels, a top-1 accuracy drop of at most 1 point; without labels, "
        "the default mean output cosine to the original of at least 0.999 (the tiny "
        "transformer), or 0.99 where the case says so (MiniLM, ResNet-18).",
        "- OpenVINO defaults: the plain export compiled for the CPU with no config (its own "
        "precision, hint and threads). OpenVINO NNCF int8: `nncf.quantize` on the plain "
        "export with only the calibration data, compiled the same way. Both timed by the "
        "tool's loop in the suite's process; batch-32 throughput under OpenVINO's "
        "throughput hint; outputs judged against the plain export's over the evaluation set.",
        "- p50 in ms with the spread (inter-quartile range over the median) in brackets; "
        f"timing budget {budget.measure_s:g} s per measurement (at most {budget.max_runs} "
        "runs). Every row is measured at one thread and at one per physical core, and its "
        "faster is shown with that thread count.",
        "- PyTorch rows take the model's own inputs: for the tabular MLP its preprocessing "
        "runs outside them in NumPy, while every ONNX row runs it inside the graph.",
        "- FLOPs: one batch-1 forward pass of the PyTorch model counted by "
        "torch.utils.flop_counter (matrix products, convolutions, attention; two per "
        "multiply-add; element-wise work left out). GFLOP/s is those FLOPs over the pick's "
        "p50.",
        f"- Of peak: GFLOP/s over the machine's {peak.describe()}."
        if peak
        else "- Of peak: not given, /proc/cpuinfo reports no clock.",
        load_line(
            [row for o in outcomes for row in [o.results.pick, *o.rows.values()] if row is not None]
        ),
        *(f"- {n}" for n in notes),
    ]
    return "\n".join(lines) + "\n"
