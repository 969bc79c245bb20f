"""Machines: targets, what this host offers, runtime sessions and the timing loop."""
