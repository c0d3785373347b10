"""Same run id, same numbers: on which machine. Two copies of one run whose figures differ are
diagnosed by their numerics records (config.json's ``numerics``: CPU capability and ISA, GPU,
torch, device type): computed on other kernels, they are the same run with other rounding;
computed on the same kernels, a real disagreement. The policy for disagreeing copies is the same
in both cases (none is copied; the target's copy stays as it was)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.benchmark.store.test_merge import merged, set_test_acc, snapshot

AVX512 = {"capability": "AVX512", "isa": ["avx2", "fma", "avx512f", "avx512bw"]}
AVX2 = {"capability": "AVX2", "isa": ["avx2", "fma"]}


def set_kernels(run_dir: Path, cpu: dict) -> None:
    """Record the run as computed on a CPU with these kernels (config.json and meta.json)."""
    for name in ("config.json", "meta.json"):
        path = run_dir / name
        record = json.loads(path.read_text())
        record["numerics"]["cpu"].update(cpu)
        path.write_text(json.dumps(record, indent=2, sort_keys=True))


def test_other_kernels_and_other_figures_are_the_same_run_with_other_rounding(stores):
    tmp, ids = stores
    rid, into = ids["a"], tmp / "merged"
    set_kernels(tmp / "a" / rid, AVX512)
    assert merged([tmp / "a"], into).copied == [rid]
    held = snapshot(into)
    set_kernels(tmp / "c" / rid, AVX2)  # the same run computed on another machine: last digits differ
    acc = json.loads((tmp / "c" / rid / "result.json").read_text())["test/acc_last"]
    set_test_acc(tmp / "c" / rid, 2, acc + 1e-7)
    report = merged([tmp / "c"], into)
    ((crid, paths, diffs),) = report.conflicts
    assert crid == rid and paths == [str(into / rid), str(tmp / "c" / rid)]
    assert any(d.startswith("result.json test/acc_last") for d in diffs)
    assert report.kernels[rid] == ("cpu.capability AVX512 vs AVX2; cpu.isa avx2,fma,avx512f,avx512bw "
                                   "vs avx2,fma")
    cause = report.to_dict()["conflicts"][0]["cause"]
    assert cause == (f"computed on other kernels ({report.kernels[rid]}): the same run, other "
                     f"rounding; kept the target's copy")
    assert f"Conflict {rid} ({into / rid} vs {tmp / 'c' / rid}): {cause}; result.json" in report.summary()
    assert "disagreement" not in report.summary()
    # the policy for copies that differ is unchanged: nothing written, the target as it was
    assert report.copied == [] and not report.ok and snapshot(into) == held


def test_two_sources_on_other_kernels_copy_neither(stores):
    tmp, ids = stores
    rid, into = ids["a"], tmp / "merged"
    set_kernels(tmp / "a" / rid, AVX512)
    set_kernels(tmp / "c" / rid, AVX2)
    set_test_acc(tmp / "c" / rid, 1, 0.125)
    report = merged([tmp / "a", tmp / "c"], into)
    assert report.kernels[rid].startswith("cpu.capability AVX512 vs AVX2")
    assert report.to_dict()["conflicts"][0]["cause"].endswith("the same run, other rounding; none copied")
    assert report.copied == [] and not (into / rid).exists()


def test_the_same_kernels_and_other_figures_are_a_real_disagreement(stores):
    tmp, ids = stores
    rid, into = ids["a"], tmp / "merged"
    for s in ("a", "c"):
        set_kernels(tmp / s / rid, AVX2)
    set_test_acc(tmp / "c" / rid, 2, 0.5)
    report = merged([tmp / "a", tmp / "c"], into)
    ((crid, _paths, diffs),) = report.conflicts
    assert crid == rid and rid not in report.kernels and any("test/acc_last" in d for d in diffs)
    cause = report.to_dict()["conflicts"][0]["cause"]
    assert cause == "the same kernels (as far as recorded) gave other numbers, a real disagreement; none copied"
    assert cause in report.summary() and "other rounding" not in report.summary()


def test_a_third_copy_disagreeing_on_the_same_kernels_is_a_real_disagreement(stores):
    tmp, ids = stores
    rid = ids["a"]
    shutil.copytree(tmp / "c", tmp / "d")
    set_kernels(tmp / "a" / rid, AVX512)
    for s, value in (("c", 0.25), ("d", 0.5)):  # c: other kernels; d: a's kernels, other numbers
        set_test_acc(tmp / s / rid, 2, value)
    set_kernels(tmp / "c" / rid, AVX2)
    set_kernels(tmp / "d" / rid, AVX512)
    report = merged([tmp / "a", tmp / "c", tmp / "d"], tmp / "merged")
    assert len(report.conflicts) == 1 and rid not in report.kernels


def test_other_kernels_and_the_same_figures_are_one_run_kept_once(stores):
    """The kernel set is where a run was made, not what it is: copies that agree on every figure
    are kept once, as copies made on two machines of one kind always were."""
    tmp, ids = stores
    rid, into = ids["a"], tmp / "merged"
    set_kernels(tmp / "a" / rid, AVX512)
    set_kernels(tmp / "c" / rid, AVX2)
    report = merged([tmp / "a", tmp / "c"], into)
    assert report.ok and report.copied == [rid] and report.conflicts == []
    assert (into / rid / "config.json").read_bytes() == (tmp / "a" / rid / "config.json").read_bytes()
