"""Running one unit of work in a fresh child process with a time limit.

A crash inside a native runtime, or a hang, then fails that unit alone; and a fresh
process gives honest peak-memory figures.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Callable
from typing import Any

from optimize.errors import UserError


class ScriptRerunError(UserError):
    """A child process died while starting: the caller's script, imported again by the
    child, ran past the point it should have stopped. No variant can run; the run stops."""


class IsolatedRunError(Exception):
    """The child process failed: raised, crashed, or ran past its time limit.

    `child_traceback` is the child's own traceback when it raised, so --debug can show
    where; `user_error` says the child stopped on the user's input, not on a bug;
    `transient` says the process was lost (a crash, a time limit), which may be the
    machine's doing rather than the unit's."""

    def __init__(
        self,
        message: str,
        child_traceback: str = "",
        user_error: bool = False,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.child_traceback = child_traceback
        self.user_error = user_error
        self.transient = transient

    @property
    def worth_remembering(self) -> bool:
        """Whether the unit would fail the same way again, so a re-run need not try it:
        not when the process was lost, nor on the user's input, which they may fix
        without changing what the unit is."""
        return not (self.transient or self.user_error)


def _reply(conn, fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        conn.send(("ok", fn(arg)))
    except Exception as exc:  # the parent reports any failure of the unit as its reason
        kind = "user_error" if isinstance(exc, UserError) else "error"
        message = str(exc) if kind == "user_error" else f"{type(exc).__name__}: {exc}"
        conn.send((kind, (message, traceback.format_exc())))


def _child(conn, fn: Callable[[Any], Any], arg: Any) -> None:
    _exit_with_parent()
    conn.send(STARTED)
    try:
        _reply(conn, fn, arg)
    finally:
        conn.close()


def _serve(conn) -> None:
    """A warm worker's loop: run each unit the parent sends until the parent goes."""
    _exit_with_parent()
    conn.send(STARTED)
    while True:
        try:
            fn, arg = conn.recv()
        except EOFError:
            return
        _reply(conn, fn, arg)


def import_modules(modules: tuple[str, ...]) -> None:
    """Import each of `modules` that is installed."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # a package not installed is said by the unit that needs it


def _exit_with_parent() -> None:
    """Have the kernel kill this process when its parent dies, so that a killed run leaves
    no child behind (Linux; elsewhere a child ends when it next talks to its parent)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = mp.parent_process()
    # The parent may have died before the signal was asked for: then nobody sends it.
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)


# What a child sends once it has started, before any unit: a child that dies without
# sending it died while Python was starting it.
STARTED = ("started", None)
# How long a child may take to start (its interpreter and the imports its unit needs).
START_TIMEOUT_S = 300.0
# Python's exit code for an exception nobody caught while the child started.
UNCAUGHT_EXIT = 1
STARTUP_FAILURE = (
    "a child process failed while starting: when optimize.run is called from a script, "
    'put the call under `if __name__ == "__main__":`, because child processes import the '
    "script again (see the README's Python API section)"
)


def _message_waits(receiver, process, timeout_s: float) -> bool:
    """Whether a message from `process` waits (False: it died first); kills it and raises
    IsolatedRunError when neither happens within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    # Polled in slices: a child that dies while a copy of its end of the pipe is still
    # open here sends no end-of-file, and waiting on the pipe alone would last the limit.
    while not receiver.poll(max(0.0, min(0.5, deadline - time.monotonic()))):
        if not process.is_alive():
            return receiver.poll()
        if time.monotonic() >= deadline:
            process.kill()
            process.join()
            raise IsolatedRunError(f"timed out after {timeout_s:.0f} s", transient=True)
    return True


def _await_start(receiver, process) -> None:
    """Wait until `process` says it started; a child that died while Python started it,
    on an exception, is most often the caller's script re-running itself: a UserError."""
    if _message_waits(receiver, process, START_TIMEOUT_S):
        try:
            if receiver.recv() == STARTED:
                return
        # A child that died with a unit sent to it unread resets the pipe.
        except (EOFError, ConnectionResetError):
            pass
    process.join()
    if process.exitcode == UNCAUGHT_EXIT:
        raise ScriptRerunError(STARTUP_FAILURE)
    raise IsolatedRunError(_crash_reason(process.exitcode), transient=True)


def _answer(receiver, process, timeout_s: float) -> Any:
    """The unit's result from `process`, or IsolatedRunError when it raised, crashed or
    ran past `timeout_s` (then the process is killed)."""
    try:
        if not _message_waits(receiver, process, timeout_s):
            raise EOFError
        status, payload = receiver.recv()
    except EOFError:
        process.join()
        raise IsolatedRunError(_crash_reason(process.exitcode), transient=True) from None
    if status != "ok":
        message, child_traceback = payload
        raise IsolatedRunError(message, child_traceback, user_error=status == "user_error")
    return payload


def run_isolated(fn: Callable[[Any], Any], arg: Any, timeout_s: float) -> Any:
    """Call `fn(arg)` in a fresh spawned process and return its result.

    `fn` must be importable at module level, and `arg` and the result picklable. A fresh
    process costs its start and imports; use it where figures must not see earlier work
    (peak memory), and run_warm elsewhere.
    """
    context = mp.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, fn, arg), daemon=True)
    process.start()
    sender.close()
    try:
        _await_start(receiver, process)
        return _answer(receiver, process, timeout_s)
    finally:
        receiver.close()
        process.join()


class WarmWorker:
    """A child process that keeps what it imported (torch, ONNX Runtime, OpenVINO) and runs
    units one after another; a unit that crashes or hangs it fails alone, and the next unit
    gets a new process."""

    def __init__(self) -> None:
        self._process = None
        self._conn = None
        # What the worker was asked to do ahead of its units, still to be waited for.
        self._ahead: list[Callable[[], object]] = []

    def prepare(self, modules: tuple[str, ...]) -> None:
        """Start the worker, if it is not running, and have it import `modules` while this
        process goes on: the next unit waits for those imports instead of doing them."""
        if self._process is None or not self._process.is_alive():
            self._spawn()
            self._ahead.append(lambda: _await_start(self._conn, self._process))
        try:
            self._conn.send((import_modules, modules))
        except OSError:
            return  # it died starting; waiting for its start says why
        self._ahead.append(lambda: _answer(self._conn, self._process, START_TIMEOUT_S))

    def run(self, fn: Callable[[Any], Any], arg: Any, timeout_s: float) -> Any:
        """Call `fn(arg)` in the worker (started on first use) and return its result."""
        self._finish_ahead()
        if self._process is None or not self._process.is_alive():
            self._start()
        try:
            self._conn.send((fn, arg))
            return _answer(self._conn, self._process, timeout_s)
        except IsolatedRunError:
            if not self._process.is_alive():  # crashed, or killed for its time
                self.close()
            raise
        except (OSError, EOFError) as exc:
            self.close()
            raise IsolatedRunError(f"worker process lost: {exc}", transient=True) from None

    def _spawn(self) -> None:
        context = mp.get_context("spawn")
        self._conn, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_end,), daemon=True)
        self._process.start()
        child_end.close()

    def _start(self) -> None:
        self._spawn()
        try:
            _await_start(self._conn, self._process)
        except BaseException:
            self.close()
            raise

    def _finish_ahead(self) -> None:
        """Wait for the start and imports asked ahead, if any are under way."""
        ahead, self._ahead = self._ahead, []
        try:
            for step in ahead:
                step()
        except IsolatedRunError:
            # An import that crashed the worker or raised: the unit gets a new process,
            # and its own import of the package says what is wrong.
            self.close()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """End the worker process, if any."""
        if self._process is not None:
            self._conn.close()
            self._process.kill()
            self._process.join()
        self._process = self._conn = None
        self._ahead = []


_WORKER = WarmWorker()
atexit.register(_WORKER.close)


def run_warm(fn: Callable[[Any], Any], arg: Any, timeout_s: float) -> Any:
    """Call `fn(arg)` in the warm worker process: as isolated as run_isolated from this
    process, without a process start and imports per unit. Its peak-memory figures include
    the units before it."""
    return _WORKER.run(fn, arg, timeout_s)


def prepare_warm_worker(modules: tuple[str, ...]) -> None:
    """Have the warm worker import `modules` ahead of its first unit, while this process
    goes on (see WarmWorker.prepare)."""
    _WORKER.prepare(modules)


def close_warm_worker() -> None:
    """End the warm worker; the next run_warm starts a new one."""
    _WORKER.close()


def _crash_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"process crashed ({name})"
    return f"process exited with code {exitcode} before reporting"
