"""Benchmarks (`make bench`): throughput and latency figures the issues ask for."""
