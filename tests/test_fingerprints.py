"""Every method's pinned results (tests/fingerprints.py): a change that moves numbers fails here."""
from __future__ import annotations

import pytest

from tests import fingerprints as fp

PINNED = fp.load()


@pytest.mark.parametrize("entry", fp.entries())
def test_pinned_results(entry):
    pinned = PINNED["entries"].get(entry)
    assert pinned is not None, (f"{entry} has no pinned results: run `python -m tests.fingerprints "
                                f"--write {entry}` and commit tests/fingerprints.json")
    now = fp.fingerprint(entry)
    exact = PINNED.get("machine") == fp.machine()
    diff = fp.compare(pinned, now, exact)
    moved = [d for d in diff if not d.startswith("revisions")]
    if moved and pinned.get("revisions") == now["revisions"]:
        pytest.fail(f"{entry}: numbers moved without a revision bump ({len(moved)} figures, e.g. "
                    f"{'; '.join(moved[:3])}). If the change is meant, bump the revision of what moved "
                    f"them (methods.base.Method.revision, methods.mask.MASK_REVISION or "
                    f"benchmark.training.HARNESS_REVISION), say why in its card, and rewrite the file: "
                    f"python -m tests.fingerprints --write {entry}")
    assert not diff, (f"{entry}: {'; '.join(diff[:5])}. Rewrite the file with "
                      f"`python -m tests.fingerprints --write {entry}` once the change is meant")


def test_the_comparison_is_exact_on_the_same_kernels_and_tolerant_elsewhere():
    a = {"revisions": {"ce": 1}, "figures": {"test/acc_last": 0.5, "e1/train/loss": 2.0}}
    same = {"revisions": {"ce": 1}, "figures": {"test/acc_last": 0.5, "e1/train/loss": 2.0}}
    near = {"revisions": {"ce": 1}, "figures": {"test/acc_last": 0.5 + 2e-6, "e1/train/loss": 2.0 + 1e-5}}
    assert fp.compare(a, same, exact=True) == []
    assert len(fp.compare(a, near, exact=True)) == 2
    assert fp.compare(a, near, exact=False) == []  # rounding of another machine's kernels
    flip = {"revisions": {"ce": 1}, "figures": {"test/acc_last": 0.5 + 1 / 360, "e1/train/loss": 2.0}}
    assert fp.compare(a, flip, exact=False) == [f"test/acc_last: 0.5 pinned, {0.5 + 1 / 360!r} now"]
    far = {"revisions": {"ce": 2}, "figures": {"test/acc_last": 0.55, "e1/train/loss": 2.0}}
    assert fp.compare(a, far, exact=False) == ["revisions {'ce': 1} pinned, {'ce': 2} now",
                                              "test/acc_last: 0.5 pinned, 0.55 now"]
