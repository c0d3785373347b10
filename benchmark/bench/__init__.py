"""Speed tooling behind docs/BENCHMARKS.md, apart from the harness it measures: each method's
epoch in time and FLOPs, the bookkeeping share and the data pipeline (epochs.py), and the data
paths of the real-world datasets (streaming.py). Nothing here is a test: timings depend on the
machine."""
from benchmark.bench.epochs import BenchOptions, bench, time_loaders, time_rounds, time_strong_views
from benchmark.bench.streaming import bench_streaming, time_streaming

__all__ = ["BenchOptions", "bench", "bench_streaming", "time_loaders", "time_rounds", "time_streaming",
           "time_strong_views"]
