"""The obd method and the generated X+obd variants (the conformance class covers them as well)."""
from __future__ import annotations

import pytest
import torch

from benchmark.data.augment import Augmenter, StrongAugmenter
from benchmark.models import build_model
from benchmark.training import run
from methods import RunContext, get_method, list_methods, resolve_hp
from methods.ce import CE
from methods.mask import MaskConfig, MaskedLinear
from methods.obd import MASK_SPACE, MaskedConfig, MaskedMethod, register_masked_variants
from tests.conftest import tiny_config

MASKED = [m for m in list_methods() if issubclass(get_method(m), MaskedMethod)]
UNMASKED = [m for m in list_methods() if m not in MASKED]


def fake_ctx(epochs: int = 2, n: int = 48, classes: int = 4) -> RunContext:
    """A RunContext on random 8x8 images, without the runner (fast)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)

    def build(k):
        torch.manual_seed(k)
        return build_model("cnn", num_classes=classes, in_channels=1, image_size=8)

    def normalise(u):
        return (u.float() / 255 - 0.5) / 0.25

    return RunContext(
        train_x=x, noisy_labels=y, num_classes=classes, epochs=epochs, batch_size=16,
        eval_batch_size=64, device=torch.device("cpu"), noise_rate=0.4, noise_kind="sym",
        build_model=build, make_optimizer=lambda p, weight_decay=None: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=weight_decay or 0.0),
        set_epoch_lr=lambda opt, e, epochs=None: 0.05, augment=lambda u, gen: normalise(u), normalise=normalise,
        generator=lambda e, s: torch.Generator().manual_seed(1000 * e + s),
        strong_view=lambda spec: StrongAugmenter(Augmenter([0.5], [0.25]), spec))


def _setup(name: str, **mask) -> MaskedMethod:
    method = get_method(name)()
    method.setup(fake_ctx(), resolve_hp(name, {}, mask))
    return method


def test_every_unmasked_method_has_a_masked_variant_and_ce_is_obd():
    assert "obd" in MASKED and "ce+obd" not in list_methods()
    assert get_method("obd").base_method is CE
    for name in UNMASKED:
        if name == "ce":
            continue
        variant = get_method(f"{name}+obd")
        assert issubclass(variant, get_method(name)) and variant.base_method is get_method(name)
    assert not any(m.endswith("+obd+obd") for m in list_methods())
    assert register_masked_variants() == []  # idempotent
    for name in ("gce+obd", "coteaching+obd", "dividemix+obd"):
        if name.split("+")[0] in list_methods():
            assert name in MASKED


def test_config_holds_the_base_config_and_the_mask():
    cfg = resolve_hp("gce+obd", {"q": 0.5}, {"sparsity": 0.3, "scope": "layer"})
    assert isinstance(cfg, MaskedConfig)
    assert cfg.base == get_method("gce").Config(q=0.5)
    assert cfg.mask == MaskConfig(sparsity=0.3, scope="layer")
    assert resolve_hp("obd", {}, {}).mask == MaskConfig()
    assert resolve_hp("obd", {}, {"sparsity": 0}).mask.sparsity == 0.0  # int from --set


def test_unknown_or_bad_settings_are_refused_with_the_valid_names():
    with pytest.raises(KeyError, match="sparsity"):
        resolve_hp("obd", {}, {"sparsty": 0.5})
    with pytest.raises(KeyError, match="Valid: q"):
        resolve_hp("gce+obd", {"qq": 1}, {})
    with pytest.raises(KeyError, match=r"mask.sparsity must be a number in \[0, 1\)"):
        resolve_hp("obd", {}, {"sparsity": 1.5})
    with pytest.raises(KeyError, match="mask.score"):
        resolve_hp("gce+obd", {}, {"score": "taylor"})
    with pytest.raises(KeyError, match="only to obd and X\\+obd"):
        resolve_hp("gce", {}, {"sparsity": 0.5})


@pytest.mark.parametrize("name", MASKED)
def test_search_space_merges_the_base_methods(name):
    space = get_method(name).search_space()
    assert {k: space[k] for k in MASK_SPACE} == MASK_SPACE
    assert get_method(name).base_method.search_space().items() <= space.items()


@pytest.mark.parametrize("name", MASKED)
def test_every_network_is_masked_and_the_epoch_reports_the_mask(name):
    method = _setup(name, sparsity=0.5)
    for step in range(1, method.preparation_epochs() + 1):  # Confident Learning's folds, masked too
        method.prepare_epoch(step)
        assert all(isinstance(n.classifier, MaskedLinear) for n in method.networks())
    out = method.train_epoch(1)
    nets = method.networks()
    assert nets and len(method.mask_layers) == len(nets)
    assert all(isinstance(n.classifier, MaskedLinear) for n in nets)
    assert [n.classifier for n in nets] == method.mask_layers
    assert len({layer.seed for layer in method.mask_layers}) == len(nets)
    assert out["mask/sparsity"] == 0.5  # 64 of 128 edges in every row of every network
    assert out["mask/churn"] == 0.5  # from all ones to half masked
    assert out["mask/refreshes"] >= 1 and out["mask/active"] == 1.0
    for layer in method.mask_layers:
        assert ((layer.mask == 0).sum(1) == 64).all()
    # checkpoint: a fresh instance restores masks and counters exactly
    other = get_method(name)()
    other.setup(fake_ctx(), resolve_hp(name, {}, {"sparsity": 0.5}))
    other.load_state_dict(method.state_dict())
    assert len(other.mask_layers) == len(method.mask_layers)
    for a, b in zip(method.mask_layers, other.mask_layers):
        assert torch.equal(a.mask, b.mask) and a.get_extra_state() == b.get_extra_state()
    # evaluation is unmasked by default: network 1's prediction uses the full classifier
    net = nets[0]
    x = fake_ctx().normalise(fake_ctx().train_x[:8])
    with torch.no_grad():
        net.eval()
        full = net.classifier.weight
        torch.testing.assert_close(net(x), torch.nn.functional.linear(
            net.forward_features(x), full, net.classifier.bias))


def test_warmup_epochs_train_unmasked_then_mask():
    method = _setup("obd", sparsity=0.5, warmup_epochs=1)
    first = method.train_epoch(1)
    assert first["mask/sparsity"] == 0.0 and first["mask/active"] == 0.0
    assert first["mask/refreshes"] == 0.0 and first["mask/churn"] == 0.0
    second = method.train_epoch(2)
    assert second["mask/sparsity"] == 0.5 and second["mask/active"] == 1.0
    assert second["mask/churn"] == 0.5 and second["mask/refreshes"] == 3.0  # 48 samples / 16


def test_obd_at_sparsity_zero_trains_exactly_like_ce(tmp_path):
    ce = run(tiny_config("ce", epochs=1), tmp_path / "ce")
    obd = run(tiny_config("obd", epochs=1, **{"mask.sparsity": 0}), tmp_path / "obd")
    for k in ("test/acc_last", "val_noisy/acc_best"):
        assert obd[k] == ce[k], k
    assert obd["mask/sparsity"] == 0.0
    assert obd["grad/err_fc_masked"] == pytest.approx(obd["grad/err_fc_unmasked"], rel=1e-6)
    assert obd["grad/err_fc_unmasked"] == pytest.approx(ce["grad/err_fc_unmasked"], rel=1e-6)
    assert "grad/err_fc_masked" not in ce
