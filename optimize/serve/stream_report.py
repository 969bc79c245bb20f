"""A language model pick's stream sweep in serving/: stream_sweep.json (every point and the
recommendation) and stream_sweep.md (a table a person reads), and its lines for the
terminal."""

from __future__ import annotations

from pathlib import Path

from optimize.serve.stream_sweep import StreamSweep
from optimize.serve.sweep_report import FOLDER, sweep_lines
from optimize.store import write_json_atomic, write_text_atomic

# How the instance took the requests, by whether its runtime generates batches.
SERVED = {
    True: "serving the requests waiting when it turns to them together as one batch (later "
    "arrivals wait for the next batch)",
    False: "answering one request at a time in arrival order",
}


def _files(out_dir: Path) -> list[Path]:
    return [out_dir / FOLDER / f"stream_sweep.{ext}" for ext in ("json", "md")]


def write_stream_sweep(out_dir: Path, sweep: StreamSweep) -> list[Path]:
    """Write the sweep under serving/; the files written."""
    json_path, md_path = _files(out_dir)
    write_json_atomic(json_path, sweep.to_dict())
    write_text_atomic(md_path, render_stream_markdown(sweep))
    return [json_path, md_path]


def remove_stream_sweep(out_dir: Path) -> None:
    """Remove an earlier sweep's files: they were for an earlier pick."""
    for path in _files(out_dir):
        path.unlink(missing_ok=True)


def stream_lines(sweep: StreamSweep) -> list[str]:
    """A line per number of streams, then the recommendation or why there is none."""
    lines = [
        f"{p.streams} stream(s): {p.tokens_per_s:,.1f} tokens/s in all, time to first token "
        f"p50 {p.ttft_p50_ms:,.1f} ms, p99 {p.ttft_p99_ms:,.1f} ms ({p.requests} requests)"
        for p in sweep.points
    ]
    best = sweep.recommended
    if best is None:
        lowest = min(p.ttft_p99_ms for p in sweep.points)
        lines.append(
            f"no number of streams meets time to first token p99 ≤ {sweep.slo_p99_ms:g} ms; "
            f"the lowest was {lowest:,.1f} ms"
        )
    elif sweep.slo_p99_ms is not None:
        lines.append(
            f"recommended: at most {best.streams} concurrent stream(s) per instance, "
            f"{best.tokens_per_s:,.1f} tokens/s at time to first token p99 "
            f"{best.ttft_p99_ms:,.1f} ms"
        )
    return lines


def under_load_lines(load_sweeps: list, stream_sweep: StreamSweep | None) -> list[str]:
    """What the pick sustained under load, a line each: the stream sweep of a language
    model's pick, else the load sweeps (none when neither ran)."""
    return stream_lines(stream_sweep) if stream_sweep else sweep_lines(load_sweeps)


def render_stream_markdown(sweep: StreamSweep) -> str:
    """The sweep as a table, with how it was taken."""
    slo = f"; SLO: time to first token p99 ≤ {sweep.slo_p99_ms:g} ms" if sweep.slo_p99_ms else ""
    head = [
        f"# Streams served: {sweep.label}",
        "",
        f"One instance in {sweep.runtime}, {SERVED[sweep.batched]}; each request a "
        f"{sweep.prompt_tokens}-token prompt and {sweep.new_tokens} new tokens. "
        f"Time to first token counts the wait in the queue{slo}.",
        "",
        "| streams | requests | mean batch | tokens/s in all | ms per token | TTFT p50 ms "
        "| TTFT p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [
        f"| {p.streams} | {p.requests} | {p.mean_batch:.1f} | {p.tokens_per_s:,.1f} | "
        f"{p.ms_per_token:.2f} | {p.ttft_p50_ms:,.1f} | {p.ttft_p99_ms:,.1f} |"
        for p in sweep.points
    ]
    return "\n".join([*head, *rows, "", *stream_lines(sweep)[len(sweep.points) :], ""])
