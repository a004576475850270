"""Fan-out benchmarks: ``python -m bench --help`` (see docs/performance.md)."""
