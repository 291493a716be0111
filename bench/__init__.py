"""Benchmarks: speed and memory measured against a baseline in the same run, as ratios."""
