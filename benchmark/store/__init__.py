"""The run store, the source of truth: run folders and their layout (runs.py, layout.py), atomic
files (atomic.py), what a result is (summary.py), the reports' long frame and row labels
(frame.py), the noise artifacts kept in the store (noise_cache.py), merging stores (merge.py, with
verify.py checking every copied run folder, read through received.py, which follows no link) and
the W&B mirror of runs (mirror.py: a copy, never the source)."""
from benchmark.store.atomic import atomic_write_bytes, atomic_write_json, json_safe, read_json
from benchmark.store.frame import hp_labels, load, load_frame, method_label, parse_filters, protocol_labels
from benchmark.store.layout import ACCURACIES, FINAL_METRICS, RUN_FILES, RUN_ID, SUITE_FILES
from benchmark.store.merge import MergeReport, merge
from benchmark.store.mirror import Tracker, resolve_mode, scrub, scrub_argv
from benchmark.store.noise_cache import cache_path, noise_for, spec_of
from benchmark.store.runs import Store
from benchmark.store.summary import summarise
from benchmark.store.verify import read_run

__all__ = ["ACCURACIES", "FINAL_METRICS", "MergeReport", "RUN_FILES", "RUN_ID", "SUITE_FILES", "Store",
           "Tracker", "atomic_write_bytes", "atomic_write_json", "cache_path", "hp_labels", "json_safe",
           "load", "load_frame", "merge", "method_label", "noise_for", "parse_filters", "protocol_labels",
           "read_json", "read_run", "resolve_mode", "scrub", "scrub_argv", "spec_of", "summarise"]
