"""Benchmarks against PyTorch (`tinyeffnet bench ...`). Never part of the tests' pass/fail."""
