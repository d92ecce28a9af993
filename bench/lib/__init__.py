"""Helpers shared by the benchmark scripts `bench/p*.py` (kept in a folder so `make bench` does not run them)."""
