"""Evaluation and calibration data, the original's reference outputs and preprocessing fits."""
