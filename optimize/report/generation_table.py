"""The figures of a language model's candidates as table cells: time to first token by
prompt length, time per output token, tokens/s alone and with concurrent streams, memory,
size, perplexity beside the original's and the realized weight precision."""

from __future__ import annotations

from typing import Any

from optimize.build.variant import Candidate, Variant

GENERATION_COLUMNS = (
    "variant",
    "TTFT ms",
    "ms/token",
    "tokens/s",
    "tokens/s, streams",
    "peak MB",
    "size MB",
    "perplexity",
    "agreement",
    "within tol.",
)


def is_generative(candidates: list[Candidate]) -> bool:
    """Whether the candidates are a language model's, measured in tokens."""
    return any(c.measurements and c.measurements.generation for c in candidates)


def ttft_by_length(candidate: Candidate) -> dict[int, float]:
    """Median time to first token (ms) by prompt length (tokens)."""
    generation = candidate.measurements.generation if candidate.measurements else None
    ttft = dict((generation or {}).get("ttft", {}))
    return {int(n): float(t["p50_ms"]) for n, t in sorted(ttft.items(), key=lambda i: int(i[0]))}


def ttft_header(candidates: list[Candidate]) -> str:
    """The TTFT column's header with the prompt lengths its cells are at."""
    lengths = next((list(ttft_by_length(c)) for c in candidates if ttft_by_length(c)), [])
    return f"TTFT ms at {' / '.join(map(str, lengths))}" if lengths else "TTFT ms"


def perplexity_text(candidate: Candidate) -> str:
    """'12.34 (+1.2%)': the candidate's perplexity and its change from the original's."""
    f = candidate.fidelity
    if f is None or f.score is None:
        return "–"
    change = f.relative_drop_percent
    return f"{f.score:.4g} ({change:+.1f}%)" if change is not None else f"{f.score:.4g}"


def agreement_text(candidate: Candidate) -> str:
    """'95% @12.5': the share of greedy tokens identical to the original's, and the mean
    position of the first that differs."""
    f = candidate.fidelity
    if f is None or f.identical_share is None:
        return "–"
    return f"{100 * f.identical_share:.0f}% @{f.mean_first_divergence:.1f}"


def precision_text(candidate: Candidate) -> str:
    """The realized weight precision its last pass read back ('int4 71%, int8 29%')."""
    if not candidate.measured:
        return "–"
    if not isinstance(candidate, Variant) or not candidate.steps:
        return "float32 (the original)"
    shares = {
        key.removesuffix("_share"): value
        for key, value in candidate.steps[-1].metrics.items()
        if key.endswith("_share") and value
    }
    ordered = sorted(shares.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {100 * share:.0f}%" for name, share in ordered) or "–"


def generation_cells(candidate: Candidate) -> dict[str, str]:
    """The cells of GENERATION_COLUMNS after the variant's name; '–' where unmeasured."""
    m = candidate.measurements
    if not m or not m.generation:
        return dict.fromkeys(GENERATION_COLUMNS[1:], "–")
    generation: dict[str, Any] = m.generation
    ttft = ttft_by_length(candidate)
    aggregate = generation.get("aggregate_tokens_per_s")
    return {
        "TTFT ms": " / ".join(f"{ms:.1f}" for ms in ttft.values()),
        "ms/token": f"{m.latency.p50_ms:.3g}",
        "tokens/s": f"{generation['tokens_per_s']:.1f}",
        "tokens/s, streams": (
            f"{aggregate:.1f} ×{generation['streams']}" if aggregate is not None else "–"
        ),
        "peak MB": f"{m.peak_memory_mb:.0f}",
        "size MB": f"{m.size_mb:.3g}",
        "perplexity": perplexity_text(candidate),
        "agreement": agreement_text(candidate),
        "within tol.": "yes" if candidate.within_tolerance else f"no ({candidate.verdict})",
    }


def generation_record(candidate: Candidate) -> dict[str, Any]:
    """Plain figures for variants.csv: TTFT per prompt length, decode, streams,
    perplexity and realized precision."""
    m = candidate.measurements
    if not m or not m.generation:
        return {}
    record: dict[str, Any] = {f"ttft_ms_{n}": ms for n, ms in ttft_by_length(candidate).items()}
    record |= {
        "ms_per_token": m.latency.p50_ms,
        "tokens_per_s": m.generation["tokens_per_s"],
        "streams": m.generation["streams"],
        "aggregate_tokens_per_s": m.generation.get("aggregate_tokens_per_s"),
        "peak_memory_mb": m.peak_memory_mb,
        "perplexity": candidate.fidelity.score if candidate.fidelity else None,
        "greedy_identical_share": candidate.fidelity.identical_share
        if candidate.fidelity
        else None,
        "greedy_first_divergence": (
            candidate.fidelity.mean_first_divergence if candidate.fidelity else None
        ),
        "weights": precision_text(candidate),
    }
    return record


def generation_markdown(candidates: list[Candidate]) -> list[str]:
    """report.md's section on a language model's candidates: every figure of
    GENERATION_COLUMNS and the realized weight precision; nothing for other models."""
    if not is_generative(candidates):
        return []
    columns = [*GENERATION_COLUMNS[:-1], "weights", GENERATION_COLUMNS[-1]]
    lines = [
        "",
        "## Generation",
        "",
        "Time to first token at each prompt length (tokens); decode over greedy tokens at "
        "one stream; the aggregate rate of concurrent streams where the runtime serves them; "
        "perplexity on the evaluation text, teacher-forced in each candidate's runtime; "
        "agreement: the share of greedy tokens identical to the original's over the first "
        "32 from each window's start, @ the mean position of the first that differs.",
        "",
        "| " + " | ".join(ttft_header(candidates) if c == "TTFT ms" else c for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for candidate in candidates:
        cells = generation_cells(candidate) | {
            "variant": candidate.label,
            "weights": precision_text(candidate),
        }
        if not candidate.measurements:
            cells["within tol."] = f"{candidate.status}: {candidate.reason}"
        lines.append("| " + " | ".join(cells[c].replace("|", "\\|") for c in columns) + " |")
    return lines
