"""Where a run's units of work execute: in child processes on this machine, or as tasks on
a Ray cluster (optimize.cluster). Builders and measurers call an Executor and do not know
which."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hardware.detect import HostInfo, check_target, describe_host
from hardware.targets import Target
from optimize.isolation import (
    IsolatedRunError,
    close_warm_worker,
    prepare_warm_worker,
    run_isolated,
    run_warm,
)

# The packages nearly every run's units import. Asked of the warm worker as a run starts,
# their imports take the core that loading the model leaves idle.
UNIT_IMPORTS = (
    "torch",
    "torch._dynamo",
    "onnxruntime",
    "onnxruntime.quantization",
    "openvino",
    "nncf",
)


@dataclass(frozen=True)
class Unit:
    """One unit of work: `fn(arg)` in a child process within `timeout_s`; `fresh` asks for
    a new process (honest peak memory) rather than the warm one; `what` names it for the
    record of where units ran."""

    fn: Callable[[Any], Any]
    arg: Any
    timeout_s: float
    what: str
    fresh: bool = False

    def run_here(self) -> Any:
        """The unit's result, from a child of this process: the warm one, or a fresh one.
        Raises IsolatedRunError when the unit fails."""
        run = run_isolated if self.fresh else run_warm
        return run(self.fn, self.arg, self.timeout_s)


@dataclass(frozen=True)
class Placed:
    """A unit's result and the node that produced it ("" on this machine)."""

    result: Any
    node: str = ""


class Executor(Protocol):
    """Runs a run's units: measurements on the target's hardware one at a time per machine,
    builds wherever there is room."""

    def host(self, target: Target) -> HostInfo:
        """The machine measurements run on, checked to offer `target`."""

    def prepare(self, modules: tuple[str, ...]) -> None:
        """Have the process that runs the next units import `modules` ahead of them,
        while this one goes on."""

    def measure(self, unit: Unit) -> Placed:
        """Run a measuring unit on the target's hardware, alone on its machine. Raises
        IsolatedRunError when the unit fails."""

    def measure_each(
        self, units: list[Unit], stop: Callable[[int], bool]
    ) -> list[Placed | IsolatedRunError | None]:
        """Run independent measuring units (at once where there are several machines);
        None for a unit not started because `stop(its index)` said so as it was due."""

    def build(self, unit: Unit, on_target: bool) -> Any:
        """Run a building unit anywhere, or on the target's hardware when `on_target`
        (a pass whose output depends on the machine)."""

    def close(self) -> None:
        """Release the processes or the cluster connection this executor holds."""

    def summary(self) -> dict[str, Any] | None:
        """Where the units ran, for the report; None on this machine alone."""


class LocalExecutor:
    """Every unit in a child process of this one: the warm worker, or a fresh process."""

    def host(self, target: Target) -> HostInfo:
        check_target(target)
        return describe_host(include_gpus=target.is_gpu)

    def prepare(self, modules: tuple[str, ...]) -> None:
        prepare_warm_worker(modules)

    def measure(self, unit: Unit) -> Placed:
        return Placed(unit.run_here())

    def measure_each(
        self, units: list[Unit], stop: Callable[[int], bool]
    ) -> list[Placed | IsolatedRunError | None]:
        results: list[Placed | IsolatedRunError | None] = []
        for index, unit in enumerate(units):
            if stop(index):
                results.append(None)
                continue
            try:
                results.append(self.measure(unit))
            except IsolatedRunError as exc:
                results.append(exc)
        return results

    def build(self, unit: Unit, on_target: bool) -> Any:
        return unit.run_here()

    def close(self) -> None:
        close_warm_worker()

    def summary(self) -> dict[str, Any] | None:
        return None
