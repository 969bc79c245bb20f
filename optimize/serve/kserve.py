"""The pick as a KServe InferenceService in serving/kserve.yaml, over the Open Inference
Protocol (v2), with CPU and memory requests from what was measured: the Triton repository
in KServe's Triton runtime, or a language model's pick in a container running this
package's KServe model server (no KServe runtime loads every generative runtime's folder)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from optimize.serve.pick_json import ServedPick
from optimize.serve.serving_setup import ServingSetup
from optimize.serve.triton import REPOSITORY, model_name
from optimize.store import write_text_atomic

MANIFEST = Path("serving") / "kserve.yaml"
# The server's own process (Triton's front ends and backend libraries, or KServe's Python
# server with the runtime's libraries: 380 MiB resident for a tiny language model) before
# any model is loaded; the model's measured memory comes on top.
SERVER_BASE_MB = 512
# Where KServe's storage initializer puts the files of STORAGE_URI, and the port its
# predictor container serves on.
MODEL_MOUNT = "/mnt/models"
PORT = 8080


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
    predictor = {
        "model": {
            "modelFormat": {"name": "triton"},
            "protocolVersion": "v2",
            "runtime": "kserve-tritonserver",
            "storageUri": f"s3://YOUR-BUCKET/{name}/triton",
            "resources": {"requests": resources, "limits": limits},
        }
    }
    header = (
        f"# Upload {REPOSITORY}/ (from this folder) to your model store and set storageUri to\n"
        "# where it lands; the requests are the cores the pick was measured on (or the load\n"
        "# sweep's setup uses), its measured session memory per instance, the files, and\n"
        f"# {SERVER_BASE_MB} MiB for Triton itself.\n"
    )
    annotations = {"optimize/model-repository": str(REPOSITORY)}
    return _write_manifest(pick, header, annotations, predictor)


def write_generative_kserve_manifest(pick: ServedPick, files: list[Path]) -> list[Path]:
    """Write serving/kserve.yaml for a language model's pick: a predictor container that
    serves pick.json and the pick's folder (`files`) from /mnt/models with
    optimize.serve.kserve_server, prompt strings in and text out."""
    threads = int(pick.settings.get("threads") or pick.cores)
    files_mb = sum(f.stat().st_size for f in files) / 2**20
    memory_mb = SERVER_BASE_MB + float(pick.figures.get("peak_memory_mb") or 0.0) + files_mb
    resources = {"cpu": str(threads), "memory": f"{math.ceil(memory_mb)}Mi"}
    name = model_name(pick)
    served = ["pick.json", f"{Path(pick.artifact).parts[0]}/"]
    command = ["python", "-m", "optimize.serve.kserve_server", MODEL_MOUNT, str(PORT)]
    container = {
        "name": "kserve-container",
        "image": "YOUR-REGISTRY/optimize-serve:latest",
        "command": [*command, str(threads), "0.0.0.0"],
        "env": [{"name": "STORAGE_URI", "value": f"s3://YOUR-BUCKET/{name}"}],
        "ports": [{"containerPort": PORT, "protocol": "TCP"}],
        "resources": {"requests": resources, "limits": dict(resources)},
    }
    header = (
        f"# Build an image with optimize and {pick.runtime} (pip install 'optimize[llm,serve]')\n"
        f"# and set image to it; upload {' and '.join(served)} (from this folder) to your model\n"
        f"# store and set STORAGE_URI to where they land: KServe puts them in {MODEL_MOUNT}.\n"
        f'# POST /v2/models/{name}/infer with a BYTES input "prompt" (and a max_new_tokens\n'
        '# parameter) answers a BYTES "text". The requests are the threads the pick was\n'
        "# fastest with, its measured peak memory, the files, and "
        f"{SERVER_BASE_MB} MiB for the server.\n"
    )
    annotations = {"optimize/runtime": pick.runtime, "optimize/files": ", ".join(served)}
    return _write_manifest(pick, header, annotations, {"containers": [container]})


def _write_manifest(
    pick: ServedPick, header: str, annotations: dict[str, str], predictor: dict[str, Any]
) -> list[Path]:
    """serving/kserve.yaml: an InferenceService named for the pick, with `predictor`,
    after the comment lines of `header`."""
    manifest = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": _kubernetes_name(model_name(pick)), "annotations": annotations},
        "spec": {"predictor": predictor},
    }
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
