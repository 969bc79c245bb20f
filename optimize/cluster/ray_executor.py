"""The Executor of a run on a Ray cluster: builds on any node with a free CPU (on the
target's class when a pass's output depends on the machine), measurements only on nodes of
the target's hardware class, one at a time per node. A unit whose node is lost is retried
once on another node by Ray, then fails alone. Units read and write the run's output
folder in place, so every node must see it at the same path (shared storage)."""

from __future__ import annotations

import os
import platform
import socket
import traceback
from collections import Counter, deque
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
from optimize.isolation import IsolatedRunError, close_warm_worker

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
    ray = _ray()
    # Ray pins OMP_NUM_THREADS to 1 for a task given no CPU (a measurement); the unit's
    # child would inherit it and its figures would not be a local run's.
    if not ray.get_runtime_context().get_assigned_resources().get("CPU"):
        if os.environ.get("OMP_NUM_THREADS") == "1":
            del os.environ["OMP_NUM_THREADS"]
    return Placed(unit.run_here(), this_node())


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
    gpus: int = 0  # each unit on the target's hardware holds a GPU for a GPU target

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
                try:
                    ray.init(address=address, log_to_driver=False)
                except (ConnectionError, RuntimeError) as exc:
                    first = str(exc).strip().splitlines()[0]
                    raise UserError(
                        f"could not join the Ray cluster at {address} ({first}): check it is a "
                        "Ray head and runs the same Ray and Python versions as this machine"
                    ) from None
        return cls(address, section.hardware_class, shared_paths, connected_here)

    @property
    def _resource(self) -> str:
        return class_resource(self.hardware_class or "")

    def host(self, target: Target) -> HostInfo:
        ray = _ray()
        self.gpus = 1 if target.is_gpu else 0
        if self.hardware_class is None:
            self.hardware_class = class_id(describe_host(include_gpus=target.is_gpu))
            whose = " (this machine's; choose another with --hardware-class)"
        else:
            whose = ""
        nodes = _alive_nodes()
        if not _feasible({self._resource: 1}):
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
        if not _feasible(self._measuring()):
            raise UserError(
                f"no node of hardware class {self.hardware_class} has a measuring slot"
                + (" and a GPU" if self.gpus else "")
                + f": start its nodes with `{START_NODES}`"
            )
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # Only what this machine sees: a path missing here is the user's to fix, and the
        # run says so when it loads the model.
        paths = [str(p) for p in self.shared_paths if p.exists()]
        for node in nodes:
            place = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            remote = ray.remote(missing_paths).options(num_cpus=0, scheduling_strategy=place)
            if unseen := self._await(remote.remote(paths), {}):
                raise UserError(
                    f"node {node['NodeManagerAddress']}/{node['NodeID'][:8]} does not see "
                    f"{unseen[0]}: every node reads and writes the run's files in place, so "
                    "give the model and --out paths on storage all nodes mount"
                )
        remote = ray.remote(node_host).options(
            num_cpus=0, num_gpus=self.gpus, resources={self._resource: 1}
        )
        self.measuring_host = self._await(remote.remote(str(target)), {self._resource: 1})
        return self.measuring_host

    def measure(self, unit: Unit) -> Placed:
        return self._placed(unit, self._await(self._submit_measure(unit), self._measuring()))

    def measure_each(
        self, units: list[Unit], stop: Callable[[int], bool]
    ) -> list[Placed | IsolatedRunError | None]:
        # As many at once as the class has nodes; the budget is asked before each start.
        width = max(1, sum(_covers(n, self._measuring()) for n in _alive_nodes()))
        results: list[Placed | IsolatedRunError | None] = [None] * len(units)
        pending: deque = deque()
        started = 0
        while started < len(units) or pending:
            while started < len(units) and len(pending) < width:
                if not stop(started):
                    pending.append((started, self._submit_measure(units[started])))
                started += 1
            if not pending:
                break
            index, ref = pending.popleft()
            try:
                placed = self._await(ref, self._measuring())
                results[index] = self._placed(units[index], placed)
            except IsolatedRunError as exc:
                results[index] = exc
        return results

    def prepare(self, modules: tuple[str, ...]) -> None:
        """Nothing: the cluster's nodes are other machines, each importing as its units do."""

    def build(self, unit: Unit, on_target: bool) -> Any:
        needs = {"CPU": 1, self._resource: 1, "GPU": self.gpus} if on_target else {"CPU": 1}
        remote = (
            _ray()
            .remote(run_unit)
            .options(
                num_cpus=1,
                num_gpus=needs.get("GPU", 0),
                resources={self._resource: 1} if on_target else {},
                max_retries=1,
            )
        )
        return self._placed(unit, self._await(remote.remote(unit), needs)).result

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

    def _measuring(self) -> dict[str, float]:
        """What a measuring unit holds: the node's slot, its class, a GPU for a GPU target."""
        return {MEASURE_SLOT: 1, self._resource: 1, "GPU": self.gpus}

    def _submit_measure(self, unit: Unit):
        resources = {k: v for k, v in self._measuring().items() if k != "GPU"}
        remote = (
            _ray()
            .remote(run_unit)
            .options(num_cpus=0, num_gpus=self.gpus, resources=resources, max_retries=1)
        )
        return remote.remote(unit)

    def _placed(self, unit: Unit, placed: Placed) -> Placed:
        self.placements.append({"unit": unit.what, "node": placed.node})
        return placed

    def _await(self, ref, needs: dict[str, float]) -> Any:
        """The task's result. A unit's failure (IsolatedRunError) or the user's input
        (UserError) is raised as the task raised it; anything else that went wrong on the
        cluster (a lost node, twice; a node's broken environment; no live node left with
        `needs`) is that unit's IsolatedRunError, not worth remembering."""
        ray = _ray()
        while True:
            ready, _ = ray.wait([ref], timeout=POLL_S)
            if ready:
                try:
                    return ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, (IsolatedRunError, UserError)):
                        raise exc.cause from None
                    raise _lost(exc, "failed on its node") from None
                except ray.exceptions.RayError as exc:
                    raise _lost(exc, "lost on the cluster, after one retry") from None
            if not _feasible(needs):
                ray.cancel(ref, force=True)
                raise IsolatedRunError(
                    f"no live node of the cluster has what it needs ({_needs_text(needs)})",
                    transient=True,
                )


def _lost(exc: Exception, what: str) -> IsolatedRunError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    detail = "".join(traceback.format_exception(exc))
    return IsolatedRunError(f"{what}: {first}", detail, transient=True)


def _needs_text(needs: dict[str, float]) -> str:
    return ", ".join(
        f"class {k.removeprefix(CLASS_PREFIX)}" if k.startswith(CLASS_PREFIX) else f"{k} {v:g}"
        for k, v in needs.items()
        if v
    )


def _alive_nodes() -> list[dict[str, Any]]:
    return [n for n in _ray().nodes() if n["Alive"]]


def _covers(node: dict[str, Any], needs: dict[str, float]) -> bool:
    return all(node["Resources"].get(k, 0) >= v for k, v in needs.items() if v)


def _feasible(needs: dict[str, float]) -> bool:
    """Whether some live node has everything in `needs` (in total, busy or not)."""
    return any(_covers(node, needs) for node in _alive_nodes())


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
