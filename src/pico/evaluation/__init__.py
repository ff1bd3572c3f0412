"""Stage 8 (Section 4): the benchmarks, their data readers, metrics, and the demo's own benchmark data."""
