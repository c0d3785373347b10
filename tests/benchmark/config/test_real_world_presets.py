"""The real-world presets: each protocol's official values, the dry run without data, and the
published numbers attached only under the matching protocol."""
import subprocess
import sys

from benchmark.config import expand, load_preset
from benchmark.training import protocol_of
from reports import published


def _by_method(name):
    return {c.method: c for c in expand(load_preset(name), seeds=[0])}


def test_clothing1m_preset_is_dividemix_train_clothing1m():
    cells = _by_method("clothing1m")
    dm = cells["dividemix"]
    assert (dm.dataset, dm.model, dm.epochs, dm.batch_size) == ("clothing1m", "resnet50_imagenet", 81, 32)
    assert (dm.optim.lr, dm.optim.weight_decay, dm.optim.milestones) == (0.002, 1e-3, [40])
    assert (dm.hp["num_batches"], dm.hp["lambda_u"], dm.hp["mix_forward"], dm.hp["conf_penalty"]) == \
        (1000, 0.0, "labelled", "on")
    assert dm.noise.kind == "none" and cells["dividemix+obd"].hp["num_batches"] == 1000
    assert (cells["ce"].epochs, cells["ce"].optim.milestones) == (3, [2])


def test_webvision_presets_use_each_protocols_geometry_and_optimiser():
    dm = _by_method("webvision-dividemix")["dividemix"]
    assert (dm.dataset, dm.model, dm.optim.lr, dm.optim.milestones) == ("webvision_mini", "inception_resnet_v2",
                                                                        0.01, [40])
    elr = _by_method("webvision-elr-plus")["elr_plus"]
    assert (elr.dataset, elr.epochs, elr.optim.lr, elr.hp["mixup_alpha"]) == ("webvision_mini_227", 100, 0.02, 1.5)
    anl = _by_method("webvision-anl")
    a = anl["anl_ce"]
    assert (a.dataset, a.model, a.batch_size, a.optim.nesterov, a.optim.grad_clip) == \
        ("webvision_mini_224", "resnet50", 512, True, 5.0)
    # StepLR(1, 0.97) stepped per epoch: lr 0.4 * 0.97 ** (epoch - 1)
    from benchmark.training.optim import lr_at
    assert abs(lr_at(a.optim, 250, 250) - 0.4 * 0.97 ** 249) < 1e-12
    assert (a.hp["alpha"], a.hp["beta"], a.hp["delta"]) == (20.0, 1.0, 5e-6)
    assert (anl["nce_rce"].hp["alpha"], anl["nce_rce"].hp["beta"]) == (50.0, 0.1)


def test_clothing1m_dry_run_lists_its_protocol_without_data(tmp_path):
    p = subprocess.run([sys.executable, "runner.py", "grid", "clothing1m", "--dry-run", "--runs",
                        str(tmp_path / "store")], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "NLB_CACHE_DIR": str(tmp_path / "cache")})
    assert p.returncode == 0, p.stderr
    assert "9 runs, 0 finished" in p.stderr
    assert "dataset=clothing1m, model=resnet50_imagenet" in p.stdout and "lr=0.002" in p.stdout
    assert "num_batches=1000" in p.stdout and not (tmp_path / "store").exists()


def test_published_real_world_numbers_need_their_protocol():
    dm = _by_method("clothing1m")["dividemix"]
    proto = protocol_of(dm, "crop+flip")
    hit = published.lookup(proto, "clothing1m", "none", "dividemix", "test/acc_at_best_val")
    assert hit is not None and hit.text == "74.76"
    dm.optim.lr = 0.02  # another protocol: no number
    assert published.lookup(protocol_of(dm, "crop+flip"), "clothing1m", "none", "dividemix",
                            "test/acc_at_best_val") is None
    elr = _by_method("webvision-elr-plus")["elr_plus"]
    assert published.lookup(protocol_of(elr, "crop+flip"), "webvision_mini_227", "none", "elr_plus",
                            "test/acc_best").text == "77.78"
