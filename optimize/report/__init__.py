"""Reporting: the Results record, report.json/md/html, plots, the terminal and run comparison."""
