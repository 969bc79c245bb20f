"""The serving/ folder of an output folder, made from its pick.json: the Triton model
repository and the KServe manifest, run as the load sweep recommends when it ran."""

from __future__ import annotations

from pathlib import Path

from optimize.serve.kserve import MANIFEST, write_kserve_manifest
from optimize.serve.pick_json import ServedPick
from optimize.serve.serving_setup import ServingSetup
from optimize.serve.triton import (
    remove_stale_repository,
    served_model,
    write_triton_repository,
)


def write_serving(
    out_dir: Path, pick: ServedPick | None, setup: ServingSetup | None = None
) -> list[Path]:
    """Write serving/ in `out_dir` for `pick` (as pick.json records it); remove it when
    there is no pick, or none Triton can run."""
    served = served_model(pick) if pick is not None else None
    if served is None:
        remove_stale_repository(out_dir)
        (out_dir / MANIFEST).unlink(missing_ok=True)
        return []
    repository = write_triton_repository(pick, served, setup)
    return [*repository, *write_kserve_manifest(pick, repository, setup)]
