"""Benchmark tooling: see bench/run.py and BENCHMARKS.md."""
