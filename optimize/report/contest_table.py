"""The head-to-head as a person reads it: the table's cells, its introduction and a summary."""

from __future__ import annotations

from hardware.load_guard import BUSY_SHARE
from optimize.choose.contest import Contest


def tie_reason(contest: Contest) -> str:
    """What a winner that tied with the fastest has over it: higher quality, else a
    smaller file."""
    winner, fastest = contest.entry(contest.winner), contest.entry(contest.fastest)
    if winner["quality"] > fastest["quality"]:
        return f"higher quality ({winner['quality']:.6g} against {fastest['quality']:.6g})"
    ours, theirs = winner["size_mb"], fastest["size_mb"]
    if ours >= theirs:
        return "as good and no larger: the order the run tried them in decided"
    if f"{ours:.4g}" == f"{theirs:.4g}":
        # Files a few bytes apart: megabytes to four digits would read as a tie.
        return f"a smaller file ({ours * 2**20:,.0f} bytes against {theirs * 2**20:,.0f})"
    return f"a smaller file ({ours:.4g} MB against {theirs:.4g})"


CONTEST_COLUMNS = (
    "variant",
    "p50 ms",
    "spread",
    "runs",
    "vs the fastest",
    "rounds the fastest won",
    "outcome",
)


def contest_intro(contest: Contest) -> str:
    """The sentence that introduces the head-to-head table, and whether the machine was
    quiet while it ran."""
    share = contest.others_cpu_share
    if share is None:
        where = ""
    elif share > BUSY_SHARE:
        where = f", while other processes used {100 * share:.0f}% of the cores"
    else:
        where = ", on a quiet machine"
    return (
        "The variants within tolerance whose own medians were too close to rank, timed "
        f"against each other in {contest.rounds} interleaved rounds in one process{where}"
    )


def contest_rows(contest: Contest) -> list[dict[str, str]]:
    """The head-to-head table's cells by column (CONTEST_COLUMNS), fastest first."""
    rows = []
    for entry in contest.entries:
        fastest = entry["id"] == contest.fastest
        if entry["id"] == contest.winner:
            outcome = "picked" if fastest else f"picked: {tie_reason(contest)}"
        elif fastest:
            outcome = "fastest"
        else:
            outcome = "a tie within noise" if entry["tie"] else "slower"
        rows.append(
            {
                "variant": entry["label"],
                "p50 ms": f"{entry['p50_ms']:.4g}",
                "spread": f"{100 * entry['spread']:.1f}%",
                "runs": str(entry["runs"]),
                "vs the fastest": f"{100 * entry['slower_by']:+.1f}%",
                "rounds the fastest won": "–"
                if fastest
                else f"{entry['rounds_beaten_by_fastest']} of {contest.rounds}",
                "outcome": outcome,
            }
        )
    return rows


def contest_summary(contest: Contest) -> str:
    """One line: who won the head-to-head, by how much, and over how many rounds."""
    winner = contest.entry(contest.winner)
    others = [e for e in contest.entries if e["id"] != contest.winner]
    if contest.winner != contest.fastest:
        fastest = contest.entry(contest.fastest)
        return (
            f"{winner['label']} ties with the fastest, {fastest['label']} "
            f"({100 * winner['slower_by']:+.1f}%, within noise), and has {tie_reason(contest)}"
        )
    runner_up = others[0]
    verdict = "a tie within noise" if runner_up["tie"] else "clearly faster"
    return (
        f"{winner['label']} ({winner['p50_ms']:.4g} ms) against {len(others)} other(s); "
        f"the runner-up {runner_up['label']} is {100 * runner_up['slower_by']:+.1f}% and lost "
        f"{runner_up['rounds_beaten_by_fastest']} of {contest.rounds} rounds: {verdict}"
    )
