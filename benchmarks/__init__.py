"""Benchmarks: `make bench` (python -m benchmarks [NAME ...]). Figures go into docs/benchmarks.md."""
