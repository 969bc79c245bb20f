"""The reason a tied winner is given says what it really has over the fastest."""

import pytest

from optimize.choose.contest import Contest
from optimize.report.contest_table import tie_reason


def _contest(winner_size, fastest_size, winner_quality=1.0, fastest_quality=1.0):
    entries = [
        {"id": "fast", "quality": fastest_quality, "size_mb": fastest_size},
        {"id": "win", "quality": winner_quality, "size_mb": winner_size},
    ]
    return Contest(rounds=9, entries=entries, fastest="fast", winner="win")


@pytest.mark.parametrize(
    "contest, expected",
    [
        (_contest(1.0, 1.0, 0.99, 0.98), "higher quality (0.99 against 0.98)"),
        (_contest(1.0, 2.0), "a smaller file (1 MB against 2)"),
        # Megabytes to four digits would read "1.701 against 1.701".
        (_contest(1.7010, 1.7012), "a smaller file (1,783,628 bytes against 1,783,837)"),
        (_contest(1.7, 1.7), "as good and no larger: the order the run tried them in decided"),
    ],
    ids=["quality", "size", "bytes", "equal"],
)
def test_a_tie_is_broken_on_a_difference_that_shows(contest, expected):
    assert tie_reason(contest) == expected
