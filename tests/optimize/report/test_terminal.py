"""The table and lines a person reads in the terminal after a run: one line per variant,
the pick's star in view, reasons and warnings said once per kind, report.html last."""

import dataclasses

from rich.console import Console

from optimize.report.terminal import print_results


def _printed(results, width=120) -> list[str]:
    console = Console(record=True, width=width, force_terminal=True)
    print_results(results, console)
    return console.export_text().splitlines()


def test_one_line_per_variant_with_the_star_in_view(finished):
    lines = _printed(finished)
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == len(finished.variants)
    starred = [row for row in rows if "★" in row]
    assert len(starred) == 1 and starred[0].startswith("│ ★ ")
    batch = next(v.measurements.throughput_batch for v in finished.variants if v.measurements)
    assert any(f"items/s at {batch}" in line for line in lines[:5])
    assert max(len(line) for line in lines if line.startswith(("│", "┃"))) <= 120


def test_reasons_and_warnings_are_said_once_per_kind_and_report_html_is_last(finished):
    skipped = [v for v in finished.variants if not v.measurements]
    warnings = [
        "export → a: 1.3× slower than export: 15 DequantizeLinear ... in conversions; ...",
        "export → b: 1.5× slower than export: 9 DequantizeLinear ... in conversions; ...",
        "noisy latency (spread over 15% of the median): export (20%); measure longer",
    ]
    lines = _printed(dataclasses.replace(finished, warnings=warnings))
    # A long reason wraps at the console's width.
    said = " ".join(" ".join(lines).split())
    for variant in skipped:
        assert said.count(" ".join(variant.reason.split())) == 1
    grouped = [line for line in lines if line.startswith("warning:")]
    assert grouped[0].startswith("warning: slower after lowering precision (2), the first: ")
    assert grouped[1] == f"warning: {warnings[2]}"
    assert "report.html" in lines[-1]
