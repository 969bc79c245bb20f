"""Hardware classes: machines that measure alike (same CPU model and flags, core count,
GPUs, runtime versions) share a class id, which each Ray node publishes as a custom
resource, beside one measuring slot that keeps its measurements one at a time."""

from __future__ import annotations

import hashlib
import json

from hardware.detect import HostInfo, describe_host

# One per node: a measurement holds it, so no two are ever timed side by side.
MEASURE_SLOT = "optimize-measure"
CLASS_PREFIX = "optimize-class-"
# A class resource marks the node; units ask for one unit of it, never all.
CLASS_CAPACITY = 1000


def class_id(host: HostInfo) -> str:
    """The short id of the hardware class `host` belongs to."""
    facts = json.dumps(host.class_facts(), sort_keys=True, default=str)
    return hashlib.sha256(facts.encode()).hexdigest()[:12]


def class_resource(hardware_class: str) -> str:
    """The Ray custom resource that nodes of `hardware_class` publish."""
    return CLASS_PREFIX + hardware_class


def node_resources() -> dict[str, float]:
    """The custom resources this machine publishes as a Ray node: its measuring slot, its
    CPU class, and its GPU class where it has GPUs (a node measures one target at a time)."""
    hosts = [describe_host(include_gpus=False)]
    with_gpus = describe_host(include_gpus=True)
    if with_gpus.cuda_devices:
        hosts.append(with_gpus)
    return {
        MEASURE_SLOT: 1,
        **{class_resource(class_id(host)): CLASS_CAPACITY for host in hosts},
    }


def describe_class(host: HostInfo) -> str:
    """One line a person reads: CPU, cores, GPUs and runtime versions."""
    gpus = ", ".join(str(d.get("name", "GPU")) for d in host.cuda_devices)
    versions = ", ".join(
        f"{name} {host.versions[name]}"
        for name in ("onnxruntime", "openvino", "torch")
        if name in host.versions
    )
    return "; ".join(
        part for part in (f"{host.cpu_model}, {host.physical_cores} cores", gpus, versions) if part
    )
