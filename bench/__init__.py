"""Benchmarks: ``python -m bench.ledger`` (``make bench``)."""
