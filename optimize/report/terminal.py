"""What a person sees in the terminal: a progress display while working, a table after."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from optimize.errors import UserError
from optimize.report.contest_table import contest_summary
from optimize.report.generation_table import (
    GENERATION_COLUMNS,
    generation_cells,
    ttft_header,
)
from optimize.report.markdown import variant_cells
from optimize.report.plot_labels import short_label
from optimize.report.results import Results
from optimize.report.warning_groups import group_warnings
from optimize.serve.stream_report import under_load_lines

SHORT_COLUMNS = (
    "variant",
    "p50 ms",
    "p99 ms",
    "spread",
    "items/s",
    "size MB",
    "cosine",
    "score",
    "within tol.",
)


# Off a terminal, the longest a log stays silent while a unit of work runs.
HEARTBEAT_S = 20.0
# The variant column's width: longer chains end in "…" (report.md has them whole).
VARIANT_WIDTH = 48


class TerminalProgress:
    """Progress as a run goes. On a terminal: a live line on stderr with the stage, the
    count of chains done, the time taken and an estimate of the time left. Elsewhere (a CI
    log, a pipe): one plain line on stdout per message with the time since the start, and
    a line naming what is still running whenever nothing was said for HEARTBEAT_S; stderr
    stays for errors alone. Silent when `quiet`."""

    def __init__(
        self, quiet: bool = False, console: Console | None = None, log_file: Path | None = None
    ) -> None:
        self.quiet = quiet
        self.log_file = log_file
        self._log = None
        self._console = console or Console(stderr=True)
        self.live = self._console.is_terminal
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
            disable=quiet or not self.live,
        )
        self._task = None
        self._started = time.monotonic()
        self._last = ("starting", self._started)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def __enter__(self) -> TerminalProgress:
        if self.log_file is not None:
            try:
                self._log = open(self.log_file, "a", encoding="utf-8", buffering=1)
            except OSError as exc:
                raise UserError(
                    f"--log-file {self.log_file}: cannot write there ({exc.strerror})"
                ) from None
        self._progress.__enter__()
        self._task = self._progress.add_task("loading", total=None)
        if not self.live and not self.quiet:
            threading.Thread(target=self._heartbeat, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._progress.__exit__(*exc)
        if self._log is not None:
            self._log.close()

    def update(self, message: str, done: int, total: int) -> None:
        """Show `message`; `total` 0 keeps the current count."""
        if total:
            self._progress.update(self._task, description=message, completed=done, total=total)
        else:
            self._progress.update(self._task, description=message)
        if not self.live and not self.quiet:
            self._say(message)
        if self._log is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self._log.write(f"{stamp} [{time.monotonic() - self._started:7.1f} s] {message}\n")

    def _say(self, message: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._last = (message, now)
            print(f"[{now - self._started:7.1f} s] {message}", file=sys.stdout, flush=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            message, said = self._last
            if time.monotonic() - said >= HEARTBEAT_S:
                self._say(f"still {message}" if not message.startswith("still ") else message)


def print_results(results: Results, console: Console | None = None, brief: bool = False) -> None:
    """The short variant table, warnings, the pick and where the outputs went; `brief`:
    the pick and the outputs only."""
    console = console or Console()
    if not console.is_terminal:
        # Rich assumes 80 columns when piped; CI logs are wide enough for the whole table.
        console = Console(width=160)
    if not brief:
        _print_variants(results, console)
    _print_pick(results, console)


def _print_variants(results: Results, console: Console) -> None:
    table = Table(title=f"{results.source_path.name} on {results.target}")
    generative = results.generative
    columns = GENERATION_COLUMNS if generative else SHORT_COLUMNS
    batch = next((v.measurements.throughput_batch for v in results.variants if v.measurements), 1)
    named = {"items/s": f"items/s at {batch}", "TTFT ms": ttft_header(results.variants)}
    headers = [named.get(c, c) for c in columns[1:]]
    # Figures are never cut: the variant column takes what they leave (a border and two
    # spaces of padding per column), between 16 and VARIANT_WIDTH characters.
    figures = [max(len(h), 8) for h in headers]
    left = console.width - sum(figures) - 3 * len(columns) - 1
    width = max(16, min(VARIANT_WIDTH, left))
    table.add_column("variant", width=width, no_wrap=True, overflow="ellipsis")
    for header, figure_width in zip(headers, figures, strict=True):
        table.add_column(header, justify="right", no_wrap=True, min_width=figure_width)
    pick_id = results.pick.id if results.pick else None
    for variant in results.variants:
        cells = generation_cells(variant) if generative else variant_cells(variant, pick_id)
        # The pick's star first, where a cut label cannot hide it.
        name = f"★ {short_label(variant)}" if variant.id == pick_id else short_label(variant)
        if not variant.measurements:
            blanks = [""] * (len(columns) - 2)
            table.add_row(name, _status(variant), *blanks)
            continue
        verdict = cells["within tol."].split(" ", 1)[0]
        ok = f"[red]{verdict}[/red]" if variant.outside_limits else cells["within tol."]
        speed = columns[2] if generative else "p50 ms"
        if variant.screened_only:
            cells[speed] = f"≈{cells[speed]}"
        table.add_row(name, *[cells[c] for c in columns[1:-1]], ok)
    console.print(table)
    lead = "" if generative else "labels omit the 'export → ' every chain starts with; "
    console.print(
        f"{lead}★ the pick"
        + (
            "; ≈ screened only: timed briefly, and it could not win"
            if any(v.screened_only for v in results.variants)
            else ""
        )
        + "; report.md has every chain, reason and verdict whole"
    )
    _print_grouped_reasons(results, console)
    for kind, warnings in group_warnings(results.warnings):
        if len(warnings) == 1:
            console.print(f"[bold yellow]warning:[/bold yellow] {escape(warnings[0])}")
        else:
            console.print(
                f"[bold yellow]warning:[/bold yellow] {kind} ({len(warnings)}), the first: "
                f"{escape(warnings[0])}"
            )


def _print_grouped_reasons(results: Results, console: Console) -> None:
    """Each reason for not measuring once, with the variants it applies to."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    for variant in results.variants:
        if not variant.measurements:
            by_reason.setdefault((_status(variant), variant.reason), []).append(variant.label)
    for (status, reason), labels in by_reason.items():
        console.print(f"{status}: {escape(', '.join(labels))}: {escape(reason)}")


def _print_pick(results: Results, console: Console) -> None:
    if results.pick:
        unit = " per token" if results.generative else ""
        console.print(
            f"[bold green]pick:[/bold green] {escape(results.pick.label)} "
            f"({results.pick.p50_ms:.3f} ms{unit})"
        )
        if results.contest is not None:
            console.print(f"head to head: {contest_summary(results.contest)}")
        if results.pick_onnx:
            console.print(
                f"best ONNX variant: {results.pick_onnx.label} → {results.out_dir / 'best.onnx'}"
            )
    else:
        console.print(f"[bold red]{escape(results.why_no_pick)}[/bold red]")
        if results.closest:
            console.print(
                f"closest (does not meet the limit): {results.closest.label} → "
                f"{results.out_dir / 'closest.onnx'}"
            )
    for line in under_load_lines(results.load_sweeps, results.stream_sweep):
        console.print(f"under load: {line}")
    out = results.out_dir
    # Not wrapped: a path cut in two cannot be copied.
    console.print(
        f"reports: {out / 'report.html'} (open in a browser), {out / 'report.md'}, "
        f"{out / 'report.json'}",
        soft_wrap=True,
    )


def _status(variant) -> str:
    """A variant's status as shown: a failure in red; a pass skipped on purpose, or work
    cut by the budget, dimmed, since nothing went wrong."""
    colour = "red" if variant.status == "failed" else "dim"
    return f"[{colour}]{variant.status}[/{colour}]"
