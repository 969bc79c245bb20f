"""Measuring variants: worker processes, fidelity, task metrics, reuse of figures, diagnosis."""
