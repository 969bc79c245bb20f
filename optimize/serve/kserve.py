"""The pick as a KServe InferenceService: serving/kserve.yaml serves the Triton repository
with KServe's Triton runtime over the Open Inference Protocol (v2), with CPU and memory
requests from what was measured."""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from optimize.serve.pick_json import ServedPick
from optimize.serve.serving_setup import ServingSetup
from optimize.serve.triton import REPOSITORY, model_name
from optimize.store import write_text_atomic

MANIFEST = Path("serving") / "kserve.yaml"
# Triton's own process (its HTTP and gRPC front ends, the backend libraries) before any
# model is loaded; the model's measured session memory comes on top.
SERVER_BASE_MB = 512


def write_kserve_manifest(
    pick: ServedPick, repository_files: list[Path], setup: ServingSetup | None = None
) -> list[Path]:
    """Write serving/kserve.yaml for the repository the pick was written to: as many
    cores as the pick ran on (or the load sweep's setup uses), and memory for each instance."""
    instances = setup.instances if setup else 1
    cores = setup.instances * setup.threads if setup else pick.cores
    files_mb = sum(f.stat().st_size for f in repository_files) / 2**20
    session_mb = instances * float(pick.figures.get("session_memory_mb") or 0.0)
    memory_mb = SERVER_BASE_MB + session_mb + files_mb
    resources = {"cpu": str(cores), "memory": f"{math.ceil(memory_mb)}Mi"}
    gpu = pick.target.startswith("gpu")
    limits = resources | ({"nvidia.com/gpu": "1"} if gpu else {})
    name = model_name(pick)
    manifest = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": _kubernetes_name(name),
            "annotations": {"optimize/model-repository": str(REPOSITORY)},
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "triton"},
                    "protocolVersion": "v2",
                    "runtime": "kserve-tritonserver",
                    "storageUri": f"s3://YOUR-BUCKET/{name}/triton",
                    "resources": {"requests": resources, "limits": limits},
                }
            }
        },
    }
    header = (
        f"# Upload {REPOSITORY}/ (from this folder) to your model store and set storageUri to\n"
        "# where it lands; the requests are the cores the pick was measured on (or the load\n"
        "# sweep's setup uses), its measured session memory per instance, the files, and\n"
        f"# {SERVER_BASE_MB} MiB for Triton itself.\n"
    )
    path = pick.out_dir / MANIFEST
    write_text_atomic(path, header + yaml.safe_dump(manifest, sort_keys=False))
    return [path]


def _kubernetes_name(name: str) -> str:
    """`name` as a Kubernetes object name: lower-case letters, digits and '-', starting
    with a letter, at most 63 characters."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not cleaned[:1].isalpha():
        cleaned = f"model-{cleaned}".strip("-")
    return cleaned[:63].rstrip("-")
