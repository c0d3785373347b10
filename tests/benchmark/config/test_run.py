import pytest

from benchmark.config import RunConfig, build_config, config_from_dict, derive_streams
from benchmark.errors import UsageError


def test_set_overrides_are_typed_and_nested():
    cfg = build_config({"method": "gce"}, ["noise.rate=0.25", "optim.lr=0.1", "hp.q=0.5", "epochs=7",
                                           "noise.allow_unlearnable=true", "optim.milestones=3,5"])
    assert cfg.noise.rate == 0.25 and cfg.optim.lr == 0.1 and cfg.epochs == 7
    assert cfg.hp == {"q": 0.5} and cfg.noise.allow_unlearnable is True
    assert cfg.optim.milestones == [3, 5]


def test_unknown_key_lists_valid_fields():
    with pytest.raises(UsageError, match="no field 'rat'.*rate"):
        build_config(None, ["noise.rat=0.2"])
    with pytest.raises(UsageError, match="epochs must be an integer"):
        build_config(None, ["epochs=many"])


def test_toml_then_set_precedence(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('epochs = 3\nmethod = "gce"\n[noise]\nrate = 0.3\n[optim]\nlr = 0.2\n')
    cfg = build_config({"epochs": 4}, ["optim.lr=0.05"], str(f))
    assert (cfg.epochs, cfg.method, cfg.noise.rate, cfg.optim.lr) == (4, "gce", 0.3, 0.05)


def test_hash_ignores_paths_and_device_but_not_numbers():
    a = RunConfig()
    b = RunConfig(device="cuda", data_dir="/elsewhere", eval_batch_size=7)
    c = RunConfig(seed=1)
    assert a.run_id() == b.run_id() != c.run_id()
    d = RunConfig()
    d.noise.file = "x.npz"
    assert d.run_id("aa") != d.run_id("bb")  # imported noise is identified by its content


def test_streams_are_distinct_and_stable():
    s0, s1 = derive_streams(0), derive_streams(1)
    assert len(set(s0.values())) == 4
    assert s0 == derive_streams(0) and s0 != s1


def test_round_trip_from_dict():
    cfg = build_config({"method": "gce", "hp": {"q": 0.3}}, ["optim.schedule=step", "optim.milestones=2"])
    assert config_from_dict(cfg.to_dict()) == cfg
