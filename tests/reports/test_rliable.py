"""The reports' aggregates follow rliable's definitions: checked against the rliable package itself.

rliable (Agarwal et al., NeurIPS 2021) takes (runs x tasks) score matrices; here a task is a cell
of a protocol (one noise setting). Point estimates must agree exactly; the stratified-bootstrap
intervals (rliable draws from numpy's global generator, ours from a seeded Generator) must agree
within Monte Carlo error.
"""
import numpy as np
import pandas.util._decorators as _pd_decorators
import pytest


def _arch_on_pandas_3() -> None:
    """rliable needs arch < 8, whose import calls pandas' private ``deprecate_kwarg`` with the
    pandas-2 signature (old, new); pandas 3 added a leading warning class. Accept both, in this
    test process only, so that rliable's own bootstrap code runs unchanged."""
    original = _pd_decorators.deprecate_kwarg
    if getattr(original, "_nlb_compat", False):
        return

    def compat(*args, **kwargs):
        if args and isinstance(args[0], str):
            args = (FutureWarning, *args)
        return original(*args, **kwargs)

    compat._nlb_compat = True
    _pd_decorators.deprecate_kwarg = compat


_arch_on_pandas_3()
from rliable import library as rly  # noqa: E402
from rliable import metrics as rlm  # noqa: E402

from reports import stats  # noqa: E402

RUNS, TASKS = 5, 6


def _scores(seed: int, shift: float = 0.0, ties: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.4, 0.9, size=(RUNS, TASKS)) + shift
    return np.round(x, 2) if ties else x  # rounding makes ties between runs of two methods


def _cells(matrix: np.ndarray) -> list[np.ndarray]:
    """(runs x tasks) -> one (runs,) array per cell, as the reports hold them."""
    return [matrix[:, k] for k in range(matrix.shape[1])]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_iqm_equals_rliables(seed):
    x = _scores(seed)
    assert stats.aggregate_iqm(_cells(x)) == pytest.approx(float(rlm.aggregate_iqm(x)), abs=1e-12)


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True)])
def test_probability_of_improvement_equals_rliables(seed, ties):
    x, y = _scores(seed, 0.03, ties), _scores(seed + 10, 0.0, ties)
    ours = stats.probability_of_improvement(_cells(x), _cells(y))
    assert ours == pytest.approx(float(rlm.probability_of_improvement(x, y)), abs=1e-12)
    # identical columns: rliable's special case gives 1/2, and so does the pair count
    assert stats.probability_of_improvement(_cells(x), _cells(x)) == pytest.approx(
        float(rlm.probability_of_improvement(x, x)), abs=1e-12)


def test_stratified_bootstrap_intervals_match_rliables():
    x, y = _scores(3, 0.05), _scores(4)
    reps = 4000
    np.random.seed(0)
    theirs_iqm = rly.get_interval_estimates({"x": x}, lambda s: np.array([rlm.aggregate_iqm(s)]),
                                            reps=reps)[1]["x"][:, 0]
    ours_iqm = stats.stratified_bootstrap_ci(stats.aggregate_iqm, _cells(x), reps=reps, seed=0)
    assert ours_iqm == pytest.approx(tuple(theirs_iqm), abs=0.006)
    np.random.seed(0)
    theirs_poi = rly.get_interval_estimates({"xy": [x, y]}, lambda a, b: np.array(
        [rlm.probability_of_improvement(a, b)]), reps=reps)[1]["xy"][:, 0]
    ours_poi = stats.stratified_bootstrap_ci(stats.probability_of_improvement, _cells(x), _cells(y),
                                             reps=reps, seed=0)
    assert ours_poi == pytest.approx(tuple(theirs_poi), abs=0.02)
    # and the interval is a real one: wide enough to hold the point estimate, narrower than [0, 1]
    p = stats.probability_of_improvement(_cells(x), _cells(y))
    assert ours_poi[0] < p < ours_poi[1] and ours_poi[1] - ours_poi[0] < 0.6


def test_aggregates_on_a_long_frame_use_the_same_definitions():
    import pandas as pd

    from tests.reports.synth import toy_frame
    x, y = _scores(5, 0.02), _scores(6)
    parts = []
    for k in range(TASKS):
        parts.append(toy_frame({"m": list(x[:, k]), "ce": list(y[:, k])}, label=f"sym-{10 * (k + 1)}%",
                               rate=(k + 1) / 10))
    agg = stats.aggregates(pd.concat(parts), "test/acc_last", reps=500).set_index("method")
    assert agg.loc["m", "iqm"] == pytest.approx(float(rlm.aggregate_iqm(x)), abs=1e-12)
    assert agg.loc["m", "poi"] == pytest.approx(float(rlm.probability_of_improvement(x, y)), abs=1e-12)
    assert agg.loc["m", "n_cells"] == TASKS and agg.loc["m", "n_runs"] == RUNS * TASKS
