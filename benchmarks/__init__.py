"""`python -m benchmarks`: the performance table (workload in shared/benchmarks.md)."""
