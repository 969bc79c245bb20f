"""Serving hand-off: what a server needs to run the pick."""
