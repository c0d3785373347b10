"""Configuration: what one run is (RunConfig and its sections, TOML and ``--set`` overrides, seed
streams, the run id, the revisions that enter it) and how a grid file or preset expands into runs (``presets/*.toml``).

Imports nothing of benchmark/ but its errors; the checked-field helper ``param`` comes from
methods/params.py (shared with the method configs; that direction is allowed).
"""
from benchmark.config.grid import (PRESET_DIR, cell, check_name, expand, host_of, list_presets, load_preset,
                                   select_methods)
from benchmark.config.revisions import (HARNESS_REVISION, TUNE_SEED_BASE, is_tuning_run, run_revisions,
                                        stale_reason)
from benchmark.config.run import (AUGMENTS, CLASSIFIERS, NOT_HASHED, OPTIM_NEW_DEFAULTS, OPTIMIZERS,
                                  PRECISIONS, SCHEDULES, STREAMS, NoiseConfig, OptimConfig, RunConfig,
                                  apply_override, build_config, check_config, config_from_dict,
                                  derive_streams, flatten, sub_seed)

__all__ = ["AUGMENTS", "CLASSIFIERS", "HARNESS_REVISION", "NOT_HASHED", "OPTIM_NEW_DEFAULTS", "OPTIMIZERS", "PRECISIONS",
           "PRESET_DIR", "SCHEDULES", "STREAMS", "NoiseConfig", "OptimConfig", "RunConfig",
           "apply_override", "build_config", "cell", "check_name", "check_config", "config_from_dict",
           "derive_streams", "expand", "flatten", "host_of", "list_presets", "load_preset",
           "TUNE_SEED_BASE", "is_tuning_run", "run_revisions", "select_methods", "stale_reason", "sub_seed"]
