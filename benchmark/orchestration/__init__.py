"""Many runs: grids (grids.py: plan a preset's runs, train them here, with local workers or on
Slurm), tuning searches (tuning.py), both as Optuna studies executed by workers (studies.py,
workers.py, slurm.py), and publishing their results (publish.py: reports and W&B summary runs;
study_plots.py).

The face is the modules themselves, imported by name (``from benchmark.orchestration.grids import
plan``): they load optuna, submitit, matplotlib and seaborn, and a worker process, which needs only
studies.py, should not pay for the others at every start.
"""
__all__ = ["grids", "publish", "slurm", "studies", "study_plots", "tuning", "workers"]
