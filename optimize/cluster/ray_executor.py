"""The Executor of a run on a Ray cluster: builds on any node with a free CPU (on the
target's class when a pass's output depends on the machine), measurements only on nodes of
the target's hardware class, one at a time per node. A unit whose node is lost is retried
once on another node by Ray, then fails alone. Units read and write the run's output
folder in place, so every node must see it at the same path (shared storage)."""

from __future__ import annotations

import os
import platform
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.detect import HostInfo, check_target, describe_host
from hardware.targets import Target, parse_target
from optimize.cluster.hardware_class import (
    CLASS_PREFIX,
    MEASURE_SLOT,
    class_id,
    class_resource,
    describe_class,
    node_resources,
)
from optimize.config.sections import ClusterSection
from optimize.errors import UserError
from optimize.execution import Placed, Unit
from optimize.isolation import IsolatedRunError, close_warm_worker, run_isolated, run_warm

# How often a wait for a unit checks that a node of its class is still alive.
POLL_S = 2.0
CONNECT_TIMEOUT_S = 5.0
START_NODES = 'ray start --address ADDRESS --resources "$(optimize node-resources)"'


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError(
            "--cluster needs Ray, an optional extra: pip install 'optimize[cluster]'"
        ) from None
    return ray


def this_node() -> str:
    """The Ray node this process runs on, as host name / short node id."""
    node_id = _ray().get_runtime_context().get_node_id()
    return f"{platform.node()}/{node_id[:8]}"


def run_unit(unit: Unit) -> Placed:
    """On a node: the unit in a child process of this Ray worker (its warm one, or fresh)."""
    run = run_isolated if unit.fresh else run_warm
    return Placed(run(unit.fn, unit.arg, unit.timeout_s), this_node())


def node_host(target_text: str) -> HostInfo:
    """On a node of the class: the machine, checked to offer the target."""
    target = parse_target(target_text)
    check_target(target)
    return describe_host(include_gpus=target.is_gpu)


def missing_paths(paths: list[str]) -> list[str]:
    """On a node: which of `paths` it does not see."""
    return [p for p in paths if not Path(p).exists()]


@dataclass
class RayExecutor:
    """Units as Ray tasks on the cluster this process is connected to."""

    address: str
    hardware_class: str | None
    shared_paths: list[Path]
    # Whether this run connected, and so disconnects when it ends.
    connected_here: bool
    placements: list[dict[str, str]] = field(default_factory=list)
    measuring_host: HostInfo | None = None

    @classmethod
    def connect(cls, section: ClusterSection, shared_paths: list[Path]) -> RayExecutor:
        """Connect to the section's cluster (or start one here for "local"), unless this
        process is connected to one already (a notebook's, a test's)."""
        ray = _ray()
        address = section.address or "auto"
        connected_here = not ray.is_initialized()
        if not connected_here:
            current = ray.get_runtime_context().gcs_address
            if address not in ("auto", current):
                raise UserError(
                    f"this process is connected to the Ray cluster at {current} already: "
                    f"give --cluster that address or 'auto', not {address}"
                )
            address = current
        else:
            if address == "local":
                ray.init(
                    resources=node_resources(),
                    include_dashboard=False,
                    log_to_driver=False,
                    _node_ip_address="127.0.0.1",
                )
            else:
                address = _reachable(address)
                ray.init(address=address, log_to_driver=False)
        return cls(address, section.hardware_class, shared_paths, connected_here)

    @property
    def _resource(self) -> str:
        return class_resource(self.hardware_class or "")

    def host(self, target: Target) -> HostInfo:
        ray = _ray()
        if self.hardware_class is None:
            self.hardware_class = class_id(describe_host(include_gpus=target.is_gpu))
            whose = " (this machine's; choose another with --hardware-class)"
        else:
            whose = ""
        nodes = _alive_nodes()
        if not any(self._resource in n["Resources"] for n in nodes):
            classes = Counter(
                r.removeprefix(CLASS_PREFIX)
                for n in nodes
                for r in n["Resources"]
                if r.startswith(CLASS_PREFIX)
            )
            known = ", ".join(f"{c} ({k} node{'s' * (k > 1)})" for c, k in classes.items())
            raise UserError(
                f"the cluster has no node of hardware class {self.hardware_class}{whose}; "
                f"it has {known or 'no classed node'}: start one with `{START_NODES}` on a "
                "machine of that class, or pass --hardware-class one of those"
            )
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        paths = [str(p) for p in self.shared_paths]
        for node in nodes:
            place = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            remote = ray.remote(missing_paths).options(num_cpus=0, scheduling_strategy=place)
            if unseen := self._await(remote.remote(paths)):
                raise UserError(
                    f"node {node['NodeManagerAddress']}/{node['NodeID'][:8]} does not see "
                    f"{unseen[0]}: every node reads and writes the run's files in place, so "
                    "give the model and --out paths on storage all nodes mount"
                )
        remote = ray.remote(node_host).options(num_cpus=0, resources={self._resource: 1})
        self.measuring_host = self._await(remote.remote(str(target)))
        return self.measuring_host

    def measure(self, unit: Unit) -> Placed:
        return self._placed(unit, self._await(self._submit_measure(unit)))

    def measure_each(
        self, units: list[Unit], stop: Callable[[], bool]
    ) -> list[Placed | IsolatedRunError | None]:
        refs = [
            None if index and stop() else self._submit_measure(unit)
            for index, unit in enumerate(units)
        ]
        results: list[Placed | IsolatedRunError | None] = []
        for unit, ref in zip(units, refs, strict=True):
            try:
                results.append(None if ref is None else self._placed(unit, self._await(ref)))
            except IsolatedRunError as exc:
                results.append(exc)
        return results

    def build(self, unit: Unit, on_target: bool) -> Any:
        resources = {self._resource: 1} if on_target else {}
        remote = _ray().remote(run_unit).options(num_cpus=1, resources=resources, max_retries=1)
        return self._placed(unit, self._await(remote.remote(unit))).result

    def close(self) -> None:
        close_warm_worker()
        if self.connected_here:
            _ray().shutdown()

    def summary(self) -> dict[str, Any]:
        """Where the run's units ran, for the report."""
        return {
            "address": self.address,
            "hardware_class": self.hardware_class,
            "class": describe_class(self.measuring_host) if self.measuring_host else "",
            "units": self.placements,
        }

    def _submit_measure(self, unit: Unit):
        resources = {MEASURE_SLOT: 1, self._resource: 1}
        remote = _ray().remote(run_unit).options(num_cpus=0, resources=resources, max_retries=1)
        return remote.remote(unit)

    def _placed(self, unit: Unit, placed: Placed) -> Placed:
        self.placements.append({"unit": unit.what, "node": placed.node})
        return placed

    def _await(self, ref) -> Any:
        """The task's result; its own error as it raised it; IsolatedRunError when Ray
        lost it twice or no node of the class is left to run it."""
        ray = _ray()
        while True:
            ready, _ = ray.wait([ref], timeout=POLL_S)
            if ready:
                try:
                    return ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    raise exc.cause from None
                except ray.exceptions.RayError as exc:
                    first = str(exc).strip().splitlines()[0]
                    raise IsolatedRunError(
                        f"lost on the cluster, after one retry: {first}", transient=True
                    ) from None
            if not any(self._resource in n["Resources"] for n in _alive_nodes()):
                ray.cancel(ref, force=True)
                raise IsolatedRunError(
                    f"no node of hardware class {self.hardware_class} is left in the cluster",
                    transient=True,
                )


def _alive_nodes() -> list[dict[str, Any]]:
    return [n for n in _ray().nodes() if n["Alive"]]


def _reachable(address: str) -> str:
    """`address` ("auto": RAY_ADDRESS's) once its port answers: Ray itself would retry
    an unreachable address for minutes."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            raise UserError(
                "--cluster auto reads the cluster's address from RAY_ADDRESS, which is not "
                "set: set it, or give the address (HOST:PORT, as `ray status` prints it)"
            )
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        raise UserError(
            f"no Ray cluster answers at {address} ({exc}): give HOST:PORT of a running "
            "cluster's head (`ray start --head` prints it), or --cluster local"
        ) from None
    return address
