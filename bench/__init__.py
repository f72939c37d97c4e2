"""Benchmarks for ml-platform: `make bench` (= `python -m bench`) runs them.

Each benchmark is a module `bench/<name>.py` with `run() -> list[Measurement]`. Results go
to `bench/results/<name>.json` (machine-readable) and a table is printed.
"""
