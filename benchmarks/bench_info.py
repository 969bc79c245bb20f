"""What every benchmark table states: the code revision and the machine it ran on."""

from __future__ import annotations

import subprocess
from pathlib import Path


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
