"""Choosing: ranking, the Pareto front, the head-to-head contest and the pick."""
