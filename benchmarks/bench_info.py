"""What every benchmark table states: the code revision and the machine it ran on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hardware.load_guard import BUSY_SHARE


def git_revision() -> str:
    """`git describe` of the checkout the benchmark runs from, or 'unknown'."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def machine_line(environment: dict, revision: str) -> str:
    """CPU, cores, instruction-set flags, package versions and the revision, in one line."""
    versions = ", ".join(f"{k} {v}" for k, v in environment["versions"].items() if v != "missing")
    return (
        f"Machine: {environment['cpu_model']}, {environment['logical_cores']} logical cores, "
        f"flags {', '.join(environment['cpu_flags']) or 'none'}; {versions}; "
        f"optimize at {revision}."
    )


def results_head(title: str, script: str) -> list[str]:
    """A results file's first lines: its title, the command that writes it, the machine."""
    from hardware.detect import describe_host

    machine = machine_line(describe_host(include_gpus=False).to_dict(), git_revision())
    return [f"# {title}", "", f"Command: `.venv/bin/python benchmarks/{script}`", "", machine, ""]


def load_line(candidates: list) -> str:
    """What the load guard read while the candidates' figures were taken, as a note line."""
    shares = [
        c.measurements.others_cpu_share
        for c in candidates
        if c.measurements and c.measurements.others_cpu_share is not None
    ]
    if not shares:
        return "- Other processes' use of the cores was not read while these figures were taken."
    return (
        f"- Other processes used at most {100 * max(shares):.0f} % of the cores while the "
        f"compared figures were taken (above {100 * BUSY_SHARE:.0f} % a figure is re-taken, "
        "then flagged)."
    )
