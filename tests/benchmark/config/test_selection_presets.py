"""The selection family's presets: the OBD-mask paper's grid, the native protocols, and the
report's host / +mask layout with the published numbers of SED."""
import json
import subprocess
import sys

from benchmark.config import expand, load_preset


def test_obd_paper_lists_each_host_on_its_own_protocol():
    cfgs = expand(load_preset("obd-paper"))
    assert len(cfgs) == 10 * 8 * 3
    by = {}
    for c in cfgs:
        by.setdefault((c.method, c.dataset), set()).add((c.model, c.epochs))
    assert by[("sed", "cifar10")] == by[("sed+obd", "cifar100")] == {("sevencnn", 100)}
    assert by[("disc+obd", "cifar10")] == by[("disc", "cifar100")] == {("resnet18", 200)}
    assert by[("nce_rce", "cifar10")] == by[("obd", "cifar10")] == {("cnn8", 120)}
    assert by[("anl_ce+obd", "cifar100")] == by[("ce", "cifar100")] == {("resnet34", 200)}
    sed80 = next(c for c in cfgs if c.method == "sed+obd" and c.dataset == "cifar100"
                 and c.noise.kind == "sym" and c.noise.rate == 0.8)
    assert (sed80.hp["lr"], sed80.hp["end_lr"], sed80.hp["momentum_scs"], sed80.hp["aph"]) == (0.01, 5e-5, 0.999, 0.95)
    nce100 = next(c for c in cfgs if c.method == "nce_rce" and c.dataset == "cifar100")
    assert (nce100.hp["alpha"], nce100.hp["beta"]) == (10.0, 0.1)


def test_obd_paper_dry_run_needs_no_data(tmp_path):
    store = tmp_path / "store"
    p = subprocess.run([sys.executable, "runner.py", "grid", "obd-paper", "--dry-run", "--runs", str(store)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "240 runs, 0 finished" in p.stderr
    assert "sevencnn" in p.stdout and "resnet18" in p.stdout and "cnn8" in p.stdout


def test_cpu_twin_shares_the_fmnist_protocol():
    cfgs = expand(load_preset("obd-paper-fmnist"))
    assert len(cfgs) == 60
    assert {(c.model, c.epochs, c.optim.name) for c in cfgs} == {("lenet", 30, "adam")}
    assert {c.hp.get("schedule") for c in cfgs if c.method in ("sed", "disc")} == {"protocol"}


def test_native_presets_carry_their_official_settings():
    elr = {(c.dataset, c.noise.kind, c.method): c for c in expand(load_preset("elr-plus"), seeds=[0])}
    c100 = elr[("cifar100", "sym_incl", "elr_plus")]
    assert (c100.epochs, c100.optim.milestones, c100.hp["lam"], c100.hp["coef_step"]) == (250, [200], 7.0, 40000)
    assert elr[("cifar10", "asym", "elr_plus")].hp["lam"] == 1.0
    disc = expand(load_preset("disc"), seeds=[0])
    assert {c.noise.kind for c in disc if c.dataset == "cifar100"} == {"sym_incl", "pairflip"}
    cn = {(c.dataset, c.method): c for c in expand(load_preset("cifar-n"), seeds=[0])}
    assert cn[("cifar100", "coteaching_plus")].hp["init_epoch"] == 5
    assert cn[("cifar10", "jocor")].hp["co_lambda"] == 0.9


def test_a_sed_report_shows_hosts_the_mask_and_the_published_last10(tmp_path, monkeypatch):
    """Real runs of the sed protocol (100 epochs on a 12-image CIFAR-100 copy in the official
    layout): the last-10 table carries SED's Table 1 number, and the mask section lays the host,
    its +mask row and the paired gain out as the paper would."""
    from benchmark.training import run
    from tests.benchmark.data.fake_cifar import write_fake_cifar100
    monkeypatch.setenv("NLB_ALLOW_UNVERIFIED_DATA", "1")
    fake = write_fake_cifar100(tmp_path / "data", n_train=12, n_test=8)
    cells = [c for c in expand(load_preset("sed"), seeds=[0],
                               extra_sets=[f"data_dir={fake.root}", "device=cpu"])
             if c.noise.kind == "sym" and c.noise.rate == 0.2]
    assert {c.method for c in cells} == {"ce", "sed", "sed+obd"}
    for c in cells:
        res = run(c, tmp_path / "runs", wandb="disabled")
        assert 0.0 <= res["test/acc_last10_mean"] <= 1.0
    p = subprocess.run([sys.executable, "runner.py", "report", "--runs", str(tmp_path / "runs"), "--json",
                        "--wandb", "disabled"], capture_output=True, text=True, check=True)
    assert json.loads(p.stdout)["index"]
    text = next((tmp_path / "runs").rglob("last10_sed-cifar100.md")).read_text()
    assert "sym-20% \\(published\\)" in text and "66.50 \\[1\\]" in text and "35.14 \\[1\\]" in text
    hosts = next((tmp_path / "runs").rglob("hosts_mask_last10_sed-cifar100.md")).read_text()
    rows = [line.split("|")[1].strip() for line in hosts.splitlines() if line.startswith("|")][2:]
    assert rows == ["sed", "sed\\+obd", "gain \\(sed\\+obd\\)"], hosts  # ce has no masked run here
    assert "+0.0 (n = 1)" in hosts.replace("\\", "")
