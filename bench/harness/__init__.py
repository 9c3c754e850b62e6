"""Benchmark harness for Model Manager: fake upstream, targets, load, report."""
