"""What a person sees in the terminal: a progress display while working, a table after."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from optimize.report.contest_table import contest_summary
from optimize.report.markdown import variant_cells
from optimize.report.results import Results

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


class TerminalProgress:
    """A rich progress line on stderr; silent when `quiet`."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=quiet,
        )
        self._task = None

    def __enter__(self) -> TerminalProgress:
        self._progress.__enter__()
        self._task = self._progress.add_task("loading", total=None)
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def update(self, message: str, done: int, total: int) -> None:
        """Show `message`; `total` 0 keeps the current count."""
        if total:
            self._progress.update(self._task, description=message, completed=done, total=total)
        else:
            self._progress.update(self._task, description=message)


def print_results(results: Results, console: Console | None = None) -> None:
    """The short variant table, warnings, and where the outputs went."""
    console = console or Console()
    if not console.is_terminal:
        # Rich assumes 80 columns when piped; CI logs are wide enough for the whole table.
        console = Console(width=160)
    table = Table(title=f"{results.source_path.name} on {results.target}")
    for column in SHORT_COLUMNS:
        table.add_column(column, justify="left" if column == "variant" else "right")
    pick_id = results.pick.id if results.pick else None
    for variant in results.variants:
        cells = variant_cells(variant, pick_id)
        if not variant.measurements:
            blanks = [""] * (len(SHORT_COLUMNS) - 2)
            table.add_row(cells["variant"], f"[red]{variant.status}[/red]", *blanks)
            continue
        ok = "yes" if variant.within_tolerance else f"[red]{cells['within tol.']}[/red]"
        if variant.timing == "screen":
            cells["p50 ms"] = f"≈{cells['p50 ms']}"
        table.add_row(*[cells[c] for c in SHORT_COLUMNS[:-1]], ok)
    console.print(table)
    if any(v.timing == "screen" for v in results.variants):
        console.print("≈ screened only: timed briefly, and it could not win (report.md says why)")
    for variant in results.variants:
        if not variant.measurements:
            console.print(f"[red]{variant.status}:[/red] {variant.label}: {variant.reason}")
    for warning in results.warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")
    if results.pick:
        console.print(
            f"[bold green]pick:[/bold green] {results.pick.label} ({results.pick.p50_ms:.3f} ms)"
        )
        if results.contest is not None:
            console.print(f"head to head: {contest_summary(results.contest)}")
        if results.pick_onnx:
            console.print(
                f"best ONNX variant: {results.pick_onnx.label} → {results.out_dir / 'best.onnx'}"
            )
    else:
        console.print("[bold red]no variant is within tolerance[/bold red]: nothing was picked")
        if results.closest:
            console.print(
                f"closest (does not meet the limit): {results.closest.label} → "
                f"{results.out_dir / 'closest.onnx'}"
            )
    console.print(f"reports: {results.out_dir / 'report.md'}, {results.out_dir / 'report.json'}")
