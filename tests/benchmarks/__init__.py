"""Rerunnable benchmarks (not timed tests): ``python -m tests.benchmarks --help``."""
