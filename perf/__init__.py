"""The perf suite (load generator, concurrency sweep, naive reference, micro-benchmarks)."""
