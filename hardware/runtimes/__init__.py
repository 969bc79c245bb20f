"""Runtimes behind one contract (base.py), looked up by name in registry.py."""
