"""The harness: everything between a run's config and its stored result, in layers (each imports
only the ones below it; docs/ARCHITECTURE.md has the table, tests/test_layering.py checks it):

    cli            the command line (runner.py)
    orchestration  many runs: grids, tuning, Optuna studies and their workers, Slurm, reports
    bench          speed tooling
    training       one run: prepare, the loop, evaluation, numerics
    store          the run store, the source of truth: run folders, results, merge, W&B mirror
    models, data   backbones; datasets, images kept as files, augmentation
    config         run configs, grids and presets
    settings       the NLB_* environment
    errors         the two fault bases and every exception

Each subpackage's ``__init__.py`` is its public face. Nothing is imported here: a worker process
or ``runner.py --help`` loads only the layers it needs.
"""
__all__ = ["bench", "cli", "config", "data", "errors", "models", "orchestration", "settings", "store", "training"]
