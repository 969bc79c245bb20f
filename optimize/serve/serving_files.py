"""The serving/ folder of an output folder, made from its pick.json: the Triton model
repository and the KServe manifest, run as the load sweep recommends when it ran."""

from __future__ import annotations

from pathlib import Path

from optimize.serve.kserve import (
    MANIFEST,
    write_generative_kserve_manifest,
    write_kserve_manifest,
)
from optimize.serve.pick_json import PICK_FILE, ServedPick
from optimize.serve.serving_setup import ServingSetup
from optimize.serve.triton import (
    remove_stale_repository,
    served_model,
    write_triton_repository,
)


def write_serving(
    out_dir: Path, pick: ServedPick | None, setup: ServingSetup | None = None
) -> list[Path]:
    """Write serving/ in `out_dir` for `pick` (as pick.json records it): a language model's
    KServe manifest, or else the Triton repository and its manifest; remove them when there
    is no pick, or none Triton can run."""
    if pick is not None and pick.generative:
        remove_stale_repository(out_dir)
        folder = out_dir / Path(pick.artifact).parts[0]
        served = [out_dir / PICK_FILE, *sorted(p for p in folder.rglob("*") if p.is_file())]
        return write_generative_kserve_manifest(pick, served)
    served = served_model(pick) if pick is not None else None
    if served is None:
        remove_stale_repository(out_dir)
        (out_dir / MANIFEST).unlink(missing_ok=True)
        return []
    repository = write_triton_repository(pick, served, setup)
    return [*repository, *write_kserve_manifest(pick, repository, setup)]
