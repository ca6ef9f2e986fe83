"""Benchmarks (``make bench``): measured here, reported in docs/benchmarks.md, never timed tests."""
