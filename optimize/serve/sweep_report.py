"""The load sweep's outputs in serving/: load_sweep.json (every point, the knees, the
recommendation and its cost), load_sweep.md (a table a person reads) and load_sweep.png
(throughput against p99 per setup, the SLO and the recommended point marked)."""

from __future__ import annotations

import io
from pathlib import Path

from optimize.serve.load_sweep import LoadSweep
from optimize.store import write_bytes_atomic, write_json_atomic, write_text_atomic

FOLDER = Path("serving")


def _files(out_dir: Path) -> list[Path]:
    return [out_dir / FOLDER / f"load_sweep.{ext}" for ext in ("json", "md", "png")]


def write_sweep(out_dir: Path, sweeps: list[LoadSweep]) -> list[Path]:
    """Write the sweeps (in process, and through a server when it ran) under serving/."""
    json_path, md_path, png_path = _files(out_dir)
    write_json_atomic(json_path, {"sweeps": [s.to_dict() for s in sweeps]})
    write_text_atomic(md_path, render_sweep_markdown(sweeps))
    write_bytes_atomic(png_path, sweep_plot(sweeps))
    return [json_path, md_path, png_path]


def remove_sweep(out_dir: Path) -> None:
    """Remove an earlier sweep's files: they were for an earlier pick."""
    for path in _files(out_dir):
        path.unlink(missing_ok=True)


def summary_line(sweep: LoadSweep) -> str:
    """One line: the recommendation, or why there is none."""
    best = sweep.recommended
    if best is None:
        lowest = min((p for p in sweep.points if p.requests), key=lambda p: p.p99_ms, default=None)
        found = (
            f"; the lowest p99 was {lowest.p99_ms:.2f} ms ({lowest.setup.label()})"
            if lowest
            else ""
        )
        if sweep.slo_p99_ms is None:
            return f"no setup answered a request {sweep.via}"
        return f"no setup meets p99 ≤ {sweep.slo_p99_ms:g} ms {sweep.via}{found}"
    cost = f", ${sweep.cost_per_million:.4f} per million requests" if sweep.cost_per_million else ""
    return (
        f"recommended ({sweep.via}): {best.setup.label()}: {best.throughput_per_s:,.0f} requests/s "
        f"at p99 {best.p99_ms:.2f} ms with {best.load:g} clients{cost}"
    )


def sweep_lines(sweeps: list[LoadSweep]) -> list[str]:
    """Each sweep's recommendation and what a server adds, a line each."""
    return [*map(summary_line, sweeps), *overhead_lines(sweeps)]


def overhead_lines(sweeps: list[LoadSweep]) -> list[str]:
    """What the server adds: p50 at one client through it against in process, same setup."""
    if not sweeps:
        return []
    local = {(p.setup, p.load): p for p in sweeps[0].points if p.mode == "closed"}
    lines = []
    for sweep in sweeps[1:]:
        served = next((p for p in sweep.points if p.load == 1 and p.requests), None)
        here = local.get((served.setup, 1)) if served else None
        if served and here and here.requests:
            lines.append(
                f"serving overhead {sweep.via}: p50 {served.p50_ms:.3f} ms at one client against "
                f"{here.p50_ms:.3f} ms in process ({served.p50_ms - here.p50_ms:+.3f} ms); outputs "
                f"differ by at most {sweep.round_trip_error:.2g}"
            )
    return lines


def render_sweep_markdown(sweeps: list[LoadSweep]) -> str:
    """Every point of every sweep in one table, the recommendation above it."""
    lines = ["# Load sweep", ""]
    for sweep in sweeps:
        slo = f"p99 ≤ {sweep.slo_p99_ms:g} ms" if sweep.slo_p99_ms else "no SLO given"
        lines += [f"{summary_line(sweep)} ({slo}, {sweep.cores} cores).", ""]
    lines += [f"{line}." for line in overhead_lines(sweeps)]
    lines += ["", "Knees (the fewest clients reaching 90% of a setup's peak throughput):", ""]
    for sweep in sweeps:
        for label, knee in sweep.knees().items():
            lines.append(
                f"- {label} ({sweep.via}): {knee.load:g} clients, "
                f"{knee.throughput_per_s:,.1f} requests/s at p99 {_ms(knee.p99_ms)} ms"
            )
    lines += [
        "",
        "| via | setup | load | requests | failed | requests/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for sweep in sweeps:
        for p in sweep.points:
            load = f"{p.load:g} clients" if p.mode == "closed" else f"{p.load:,.0f}/s Poisson"
            lines.append(
                f"| {sweep.via} | {p.setup.label()} | {load} | {p.requests} | {p.failed} "
                f"| {p.throughput_per_s:,.1f} | {_ms(p.p50_ms)} | {_ms(p.p95_ms)} | {_ms(p.p99_ms)} |"
            )
    return "\n".join(lines) + "\n"


def sweep_plot(sweeps: list[LoadSweep]) -> bytes:
    """Throughput against p99, one line per setup and way in, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for sweep in sweeps:
        for setup in dict.fromkeys(p.setup for p in sweep.points):
            closed = [
                p for p in sweep.points if p.setup == setup and p.mode == "closed" and p.requests
            ]
            axes.plot(
                [p.throughput_per_s for p in closed],
                [p.p99_ms for p in closed],
                marker="o",
                label=f"{setup.label()} ({sweep.via})",
            )
        if sweep.recommended:
            best = sweep.recommended
            axes.scatter(
                [best.throughput_per_s], [best.p99_ms], s=200, facecolors="none", edgecolors="red"
            )
    slo = next((s.slo_p99_ms for s in sweeps if s.slo_p99_ms), None)
    if slo:
        axes.axhline(slo, color="red", linestyle="--", label=f"SLO p99 {slo:g} ms")
    axes.set_xlabel("requests per second (closed loop, rising clients)")
    axes.set_ylabel("p99 latency, ms")
    axes.set_yscale("log")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(True, alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _ms(value: float | None) -> str:
    """A latency in the table, or a dash where no request was answered."""
    return "–" if value is None else f"{value:.3f}"
