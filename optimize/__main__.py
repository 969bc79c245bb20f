"""`python -m optimize` runs the command-line interface."""

from optimize.cli import main

main()
