"""`optimize serve-bench`: the load sweep of an output folder's pick, its results in
serving/, and the Triton config and KServe manifest set to the recommended setup."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from optimize.serve.load_sweep import LoadSweep, sweep_in_process
from optimize.serve.pick_json import ServedPick
from optimize.serve.server_sweep import sweep_through_server
from optimize.serve.serving_files import write_serving
from optimize.serve.sweep_report import FOLDER, write_sweep
from optimize.store import MANIFEST, write_manifest


def serve_bench(
    out_dir: Path,
    slo_p99_ms: float | None = None,
    price_per_hour: float | None = None,
    seconds: float = 0.5,
    through_server: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> list[LoadSweep]:
    """Sweep the pick in `out_dir` under load on this machine's cores, in process and,
    with `through_server`, through KServe's model server; write the results and the
    serving files for the in-process recommendation (as measured when none meets the SLO)."""
    pick = ServedPick.read(out_dir)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    sweeps = [sweep_in_process(pick, cores, slo_p99_ms, price_per_hour, seconds, progress)]
    if through_server:
        sweeps.append(
            sweep_through_server(pick, cores, slo_p99_ms, price_per_hour, seconds, progress)
        )
    recommended = sweeps[0].recommended
    written = write_sweep(out_dir, sweeps)
    written += write_serving(out_dir, recommended.setup if recommended else None)
    _list_in_manifest(out_dir, written)
    return sweeps


def _list_in_manifest(out_dir: Path, serving_files: list[Path]) -> None:
    """manifest.json with the serving files replaced by those just written."""
    path = out_dir / MANIFEST
    entries = json.loads(path.read_text())["artifacts"] if path.is_file() else []
    kept = [out_dir / e["path"] for e in entries if not e["path"].startswith(f"{FOLDER}/")]
    write_manifest(out_dir, [p for p in kept if p.is_file()] + serving_files)
