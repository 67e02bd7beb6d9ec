"""spar harness: generation backends, cache, run records, suites and the `spar` CLI."""

__version__ = "0.1.0"
