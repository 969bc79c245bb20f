"""`optimize serve-bench`: the load sweep of an output folder's pick, its results in
serving/, and the Triton config and KServe manifest set to the recommended setup; for a
language model's pick, the sweep of concurrent generation streams."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from optimize.config.sections import ServeSection
from optimize.errors import UserError
from optimize.serve.load_sweep import LoadSweep, sweep_in_process
from optimize.serve.pick_json import ServedPick
from optimize.serve.server_sweep import sweep_through_server
from optimize.serve.serving_files import write_serving
from optimize.serve.serving_setup import ServingSetup
from optimize.serve.stream_report import write_stream_sweep
from optimize.serve.stream_sweep import StreamSweep, sweep_streams
from optimize.serve.sweep_report import FOLDER, write_sweep
from optimize.store import MANIFEST, write_manifest


def sweep_pick(
    pick: ServedPick, plan: ServeSection, progress: Callable[[str], None] = lambda message: None
) -> tuple[list[LoadSweep], StreamSweep | None]:
    """The load sweep of `pick` on this machine's cores as `plan` says: in process, and
    through KServe's model server when asked; for a language model's pick, the sweep of
    concurrent streams instead."""
    if pick.generative:
        if plan.through_server:
            raise UserError(
                "--through-server: a language model's pick is served in its own runtime, not "
                "through KServe's model server; leave the flag out"
            )
        return [], sweep_streams(pick, plan.seconds, plan.slo_p99_ms, progress)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    args = (cores, plan.slo_p99_ms, plan.price_per_hour, plan.seconds, progress)
    sweeps = [sweep_in_process(pick, *args)]
    if plan.through_server:
        sweeps.append(sweep_through_server(pick, *args))
    return sweeps, None


def serve_bench(
    out_dir: Path, plan: ServeSection, progress: Callable[[str], None] = lambda message: None
) -> tuple[list[LoadSweep], StreamSweep | None]:
    """Sweep the pick in `out_dir`; write the results and the serving files for the
    in-process recommendation (as measured when none meets the SLO)."""
    pick = ServedPick.read(out_dir)
    sweeps, streams = sweep_pick(pick, plan, progress)
    written = write_stream_sweep(out_dir, streams) if streams else write_sweep(out_dir, sweeps)
    written += write_serving(out_dir, pick, recommended_setup(sweeps))
    _list_in_manifest(out_dir, written)
    return sweeps, streams


def recommended_setup(sweeps: list[LoadSweep]) -> ServingSetup | None:
    """The setup the serving files take: the in-process sweep's recommendation."""
    best = sweeps[0].recommended if sweeps else None
    return best.setup if best else None


def _list_in_manifest(out_dir: Path, serving_files: list[Path]) -> None:
    """manifest.json with the serving files replaced by those just written."""
    path = out_dir / MANIFEST
    entries = json.loads(path.read_text())["artifacts"] if path.is_file() else []
    kept = [out_dir / e["path"] for e in entries if not e["path"].startswith(f"{FOLDER}/")]
    write_manifest(out_dir, [p for p in kept if p.is_file()] + serving_files)
