import math

import pytest

from benchmark.config import OptimConfig, build_config
from benchmark.errors import UsageError
from benchmark.training.optim import lr_at


def test_schedules():
    assert lr_at(OptimConfig(lr=0.1, schedule="none"), 5, 10) == 0.1
    step = OptimConfig(lr=0.1, schedule="step", milestones=[3, 6], gamma=0.1)
    assert [round(lr_at(step, e, 10), 6) for e in (1, 3, 4, 6, 7)] == [0.1, 0.1, 0.01, 0.01, 0.001]
    cos = OptimConfig(lr=0.2, schedule="cosine")
    assert lr_at(cos, 1, 10) == pytest.approx(0.2)
    assert lr_at(cos, 6, 10) == pytest.approx(0.1)
    # Co-teaching: constant to epoch 80, then linear to 0 over the last 120 of 200 epochs
    lin = OptimConfig(lr=0.001, schedule="linear", decay_start=80)
    assert lr_at(lin, 80, 200) == 0.001
    assert lr_at(lin, 81, 200) == pytest.approx(0.001)
    assert lr_at(lin, 200, 200) == pytest.approx(0.001 / 120)
    assert all(lr_at(lin, e, 200) >= lr_at(lin, e + 1, 200) for e in range(1, 200))


def test_bad_optimizer_names():
    with pytest.raises(UsageError, match="optim.name must be one of: sgd, adam"):
        build_config(None, ["optim.name=rmsprop"])
    with pytest.raises(UsageError, match="cosine"):
        build_config({"optim": {"schedule": "poly"}})
    assert math.isfinite(lr_at(OptimConfig(schedule="linear", decay_start=5), 5, 5))
