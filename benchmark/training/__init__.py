"""One run: prepare it (prepare.py: checks, data, noise, split, run id), train it through the one
loop (loop.py), evaluate it (evaluate.py, diagnostics.py), with the optimiser and schedules
(optim.py), the numerical setting and resources (runtime.py) and what produced it
(provenance.py). ``run(cfg)`` is the entry point; a finished run is read back from the store."""
from benchmark.errors import RunInterrupted, TrainingDiverged
from benchmark.training.loop import PROBE_SIZE, run
from benchmark.training.prepare import (HARNESS_REVISION, Prepared, check_model_fits, check_names,
                                        make_augmenter, prepare, protocol_of, resolve_augment,
                                        resolve_device, run_revisions, split_indices, validate)
from benchmark.training.runtime import autocast

__all__ = ["HARNESS_REVISION", "PROBE_SIZE", "Prepared", "RunInterrupted", "TrainingDiverged", "autocast",
           "check_model_fits", "check_names", "make_augmenter", "prepare", "protocol_of", "resolve_augment",
           "resolve_device", "run", "run_revisions", "split_indices", "validate"]
