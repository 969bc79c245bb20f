"""Every candidate of a run as one flat record of plain values: the rows of variants.csv
and of Results.to_pandas(), for spreadsheets and DataFrames."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from optimize.build.variant import Candidate
from optimize.report.generation_table import generation_record
from optimize.store import write_text_atomic

COLUMNS = (
    "label",
    "runtime",
    "status",
    "picked",
    "on_front",
    "within_tolerance",
    "verdict",
    "timing",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "spread",
    "runs",
    "throughput_per_s",
    "throughput_batch",
    "startup_ms",
    "size_mb",
    "session_memory_mb",
    "mean_cosine",
    "min_cosine",
    "max_abs_error",
    "metric",
    "score",
    "reference_score",
    "reason",
    "id",
)
CSV_FILE = "variants.csv"


def variant_records(
    candidates: list[Candidate], pick: Candidate | None, front: list[Candidate]
) -> list[dict[str, Any]]:
    """One record per candidate, in order, with COLUMNS as keys (None where a figure was
    not taken), and a language model's generation figures; `pick` and `front` say which
    was picked and which are on the front."""
    pick_id = pick.id if pick else None
    front_ids = {c.id for c in front}
    records = []
    for candidate in candidates:
        m, f = candidate.measurements, candidate.fidelity
        latency = m.latency if m else None
        records.append(
            {
                "label": candidate.label,
                "runtime": candidate.runtime,
                "status": str(candidate.status),
                "picked": candidate.id == pick_id,
                "on_front": candidate.id in front_ids,
                "within_tolerance": candidate.within_tolerance_if_judged,
                "verdict": candidate.verdict,
                "timing": candidate.timing or None,
                "p50_ms": latency.p50_ms if latency else None,
                "p90_ms": latency.p90_ms if latency else None,
                "p99_ms": latency.p99_ms if latency else None,
                "spread": latency.spread if latency else None,
                "runs": latency.runs if latency else None,
                "throughput_per_s": m.throughput_per_s if m else None,
                "throughput_batch": m.throughput_batch if m else None,
                "startup_ms": m.startup_ms if m else None,
                "size_mb": m.size_mb if m else None,
                "session_memory_mb": m.session_memory_mb if m else None,
                "mean_cosine": f.mean_cosine if f else None,
                "min_cosine": f.min_cosine if f else None,
                "max_abs_error": f.max_abs_error if f else None,
                "metric": f.metric if f else None,
                "score": f.score if f else None,
                "reference_score": f.reference_score if f else None,
                "reason": candidate.reason or None,
                "id": candidate.id,
            }
            | generation_record(candidate)
        )
    return records


def write_variants_csv(out_dir: Path, records: list[dict[str, Any]]) -> Path:
    """variants.csv in `out_dir`: the records, a header row first."""
    buffer = io.StringIO()
    # A language model's records carry its generation figures after the common columns.
    extra = list(dict.fromkeys(k for r in records for k in r if k not in COLUMNS))
    writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, *extra], lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    path = out_dir / CSV_FILE
    write_text_atomic(path, buffer.getvalue())
    return path
