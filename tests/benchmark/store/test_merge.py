"""benchmark/store/merge.py on real runs of the suite (digits, 2 epochs), trained once per session
(conftest.py beside this file).

Every merge here goes through ``merged``, which hashes every file of every source before and
after: no test passes if a merge writes, moves or deletes anything in a source.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from benchmark.errors import UsageError
from benchmark.store import RUN_FILES, Store, atomic_write_json, load_frame, merge, summarise
from benchmark.training import run
from noise import load_artifact
from tests.conftest import tiny_config


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root: SHA-256 of each file's bytes, 'dir' for each folder, the target of
    each link and 'special' for anything else (a named pipe is recorded, never read)."""
    return {str(p.relative_to(root)): _fingerprint(p) for p in sorted(root.rglob("*"))}


def _fingerprint(p: Path) -> str:
    if p.is_symlink():
        return f"link to {os.readlink(p)}"
    if p.is_dir():
        return "dir"
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "special"


def merged(sources: list[Path], into: Path, **kw):
    """merge(), checking that no source changed by a single byte, file or folder."""
    before = [snapshot(s) for s in sources]
    report = merge(sources, into, **kw)
    assert [snapshot(s) for s in sources] == before
    json.dumps(report.to_dict())  # the CLI prints it as JSON
    return report


def artifact_of(store: Path) -> Path:
    """The store's one cached noise artifact."""
    (path,) = (store / "_noise").rglob("*.npz")
    return path


def no_leftovers(into: Path) -> bool:
    return not [p for p in into.rglob("*") if ".merge-" in p.name or p.name.endswith(".tmp")]


def set_test_acc(run_dir: Path, epoch: int, value: float) -> None:
    """Give a run other numbers, as a machine computing differently would: metrics.csv's test
    accuracy at ``epoch`` and every figure train.summarise derives from the rows."""
    store, rid = Store(run_dir.parent), run_dir.name
    rows = store.read_metrics(rid)
    rows[epoch - 1]["test/acc"] = value
    rows = [{k: (int(v) if k == "epoch" else v) for k, v in r.items()} for r in rows]
    store.write_metrics(rid, rows)
    result = json.loads((run_dir / "result.json").read_text())
    atomic_write_json(run_dir / "result.json", {**result, **summarise(rows)})


def test_disjoint_stores_merge_into_a_third(stores):
    tmp, ids = stores
    into = tmp / "merged"
    report = merged([tmp / "a", tmp / "b"], into)
    assert report.ok and sorted(report.copied) == sorted([ids["a"], ids["b"]])
    assert report.already == [] and report.refused == [] and report.conflicts == []
    assert sorted(Store(into).run_ids()) == sorted([ids["a"], ids["b"]])
    assert set(load_frame(Store(into)).run_id) == {ids["a"], ids["b"]}
    for key, src in (("a", tmp / "a"), ("b", tmp / "b")):
        for name in RUN_FILES:
            assert (into / ids[key] / name).read_bytes() == (src / ids[key] / name).read_bytes()
        assert sorted(p.name for p in (into / ids[key]).iterdir()) == sorted(RUN_FILES)
    # each run's noise artifact came along, holding the labels its result records
    assert sorted(report.noise_copied) == sorted(str(artifact_of(tmp / s).relative_to(tmp / s))
                                                 for s in ("a", "b"))
    for rel in report.noise_copied:
        labels = load_artifact(into / rel).sha256
        assert labels in {json.loads((into / ids[k] / "result.json").read_text())["noise"]["sha256"]
                          for k in ("a", "b")}
    assert no_leftovers(into)
    assert "copied 2 run(s)" in report.summary()
    # the suite treats a merged run as its own: the same config is not trained again
    again = run(tiny_config("ce"), into, wandb="disabled")
    assert again["cached"] and again["run_id"] == ids["a"]
    # merging again changes nothing
    second = merged([tmp / "a", tmp / "b"], into)
    assert second.ok and second.copied == [] and second.noise_copied == []
    assert sorted(second.already) == sorted([ids["a"], ids["b"]])


def test_the_same_run_in_several_sources_is_kept_once(stores):
    tmp, ids = stores
    shutil.copytree(tmp / "a", tmp / "a2")  # a store copied to another machine
    a, c = (json.loads((tmp / s / ids["a"] / "result.json").read_text()) for s in ("a", "c"))
    # c computed the same run itself: the same numbers, other timings
    assert a["test/acc_last"] == c["test/acc_last"] and a["time/total_s"] != c["time/total_s"]
    into = tmp / "merged"
    report = merged([tmp / "a", tmp / "a2", tmp / "c"], into)
    assert report.ok and report.copied == [ids["a"]] and report.conflicts == []
    assert Store(into).run_ids() == [ids["a"]]
    for name in RUN_FILES:  # the first copy is the one kept
        assert (into / ids["a"] / name).read_bytes() == (tmp / "a" / ids["a"] / name).read_bytes()
    assert len(report.noise_copied) == 1


def test_copies_with_other_numbers_conflict_and_neither_is_written(stores):
    tmp, ids = stores
    shutil.copytree(tmp / "a", tmp / "a2")
    set_test_acc(tmp / "a2" / ids["a"], 2, 0.5)
    into = tmp / "merged"
    report = merged([tmp / "a", tmp / "a2"], into)
    assert not report.ok and report.copied == []
    ((rid, paths, diffs),) = report.conflicts
    assert rid == ids["a"] and paths == [str(tmp / "a" / rid), str(tmp / "a2" / rid)]
    assert any(d.startswith("result.json test/acc_last ") and d.endswith(" vs 0.5") for d in diffs)
    assert any(d.startswith("metrics.csv row 2 test/acc ") for d in diffs)
    assert not any("time/" in d or "meta.json" in d for d in diffs)
    assert not (into / rid).exists() and no_leftovers(into)
    assert f"Conflict {rid}" in report.summary()


def test_a_conflict_with_the_target_leaves_the_target_as_it_was(stores):
    tmp, ids = stores
    into = tmp / "merged"
    assert merged([tmp / "a"], into).copied == [ids["a"]]
    held = snapshot(into)
    set_test_acc(tmp / "c" / ids["a"], 1, 0.25)
    report = merged([tmp / "c"], into)
    ((rid, paths, diffs),) = report.conflicts
    assert rid == ids["a"] and paths[0] == str(into / rid)
    assert any(d.startswith("metrics.csv row 1 test/acc ") for d in diffs)
    assert snapshot(into) == held


def test_an_edited_result_is_refused_and_a_good_copy_still_merges(stores):
    tmp, ids = stores
    shutil.copytree(tmp / "a", tmp / "a2")
    path = tmp / "a2" / ids["a"] / "result.json"
    result = json.loads(path.read_text())
    atomic_write_json(path, {**result, "test/acc_last": result["test/acc_last"] + 0.1})
    into = tmp / "merged"
    report = merged([tmp / "a2"], into)
    ((rid, where, why),) = report.refused
    assert (rid, where) == (ids["a"], str(tmp / "a2" / rid))
    assert "result.json test/acc_last" in why and "does not match metrics.csv" in why
    assert not (into / rid).exists() and report.copied == []
    report = merged([tmp / "a2", tmp / "a"], into)
    assert report.copied == [ids["a"]] and len(report.refused) == 1 and not report.ok
    assert (into / rid / "result.json").read_bytes() == (tmp / "a" / rid / "result.json").read_bytes()


def test_a_run_under_another_name_is_refused(stores):
    tmp, ids = stores
    (tmp / "b" / ids["b"]).rename(tmp / "b" / "0123456789abcdef")
    shutil.copytree(tmp / "b" / "0123456789abcdef", tmp / "b" / "my-run")
    into = tmp / "merged"
    report = merged([tmp / "b"], into)
    reasons = {where: why for _rid, where, why in report.refused}
    assert reasons[str(tmp / "b" / "0123456789abcdef")] == (
        f"config hash {ids['b']} does not match the folder name 0123456789abcdef")
    assert "is not a run id" in reasons[str(tmp / "b" / "my-run")]
    assert report.copied == [] and report.noise_copied == [] and Store(into).run_ids() == []


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_a_broken_metrics_csv_is_refused(stores, damage):
    tmp, ids = stores
    path = tmp / "b" / ids["b"] / "metrics.csv"
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":  # the last epoch's row lost (e.g. an interrupted copy)
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    else:  # one number of epoch 1 damaged (a flipped byte)
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join([lines[0], lines[1].replace(".", "#", 1), *lines[2:]]))
    into = tmp / "merged"
    report = merged([tmp / "a", tmp / "b"], into)
    ((rid, _where, why),) = report.refused
    assert rid == ids["b"] and "metrics.csv" in why
    assert {"missing": "metrics.csv is missing", "truncated": "metrics.csv has 1 rows",
            "garbage": "metrics.csv does not parse"}[damage] in why
    assert Store(into).run_ids() == [ids["a"]] and report.copied == [ids["a"]]


def test_an_unfinished_run_is_skipped(stores):
    tmp, ids = stores
    assert (tmp / "a" / ids["u"] / "checkpoint.pt").is_file()
    into = tmp / "merged"
    report = merged([tmp / "a"], into)
    assert report.ok and report.skipped_unfinished == [(ids["u"], str(tmp / "a" / ids["u"]))]
    assert report.copied == [ids["a"]] and not (into / ids["u"]).exists()


def test_an_unfinished_folder_in_the_target_is_not_replaced(stores):
    tmp, ids = stores
    # the target's folder of this run never finished (here: its result.json lost); the merge
    # does not replace what another process may still be working on
    (tmp / "a" / ids["a"] / "result.json").unlink()
    held = snapshot(tmp / "a" / ids["a"])
    report = merged([tmp / "c"], tmp / "a")
    ((rid, where, why),) = report.refused
    assert (rid, where) == (ids["a"], str(tmp / "c" / rid)) and "unfinished folder" in why
    assert report.copied == [] and snapshot(tmp / "a" / ids["a"]) == held


def test_noise_artifacts_are_verified(stores):
    tmp, ids = stores
    into = tmp / "merged"
    # the target's cache entry of a's setting holds other labels (here: b's)
    target_entry = into / artifact_of(tmp / "a").relative_to(tmp / "a")
    target_entry.parent.mkdir(parents=True)
    shutil.copyfile(artifact_of(tmp / "b"), target_entry)
    report = merged([tmp / "a"], into)
    ((rid, _where, why),) = report.refused
    assert rid == ids["a"] and "holds other labels" in why and not (into / rid).exists()
    assert load_artifact(target_entry).sha256 == load_artifact(artifact_of(tmp / "b")).sha256
    # a source artifact whose bytes were damaged refuses the runs that use it
    damaged = artifact_of(tmp / "b")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    report = merged([tmp / "b"], into)
    ((rid, _where, why),) = report.refused
    assert rid == ids["b"] and why.startswith("noise artifact _noise/")


def test_an_interrupted_merge_leaves_no_half_written_run(stores, monkeypatch):
    tmp, ids = stores
    into = tmp / "merged"
    # what a merge killed while copying leaves: a hidden temporary folder with some files
    dead = into / f".merge-{ids['b']}.0000.tmp"
    dead.mkdir(parents=True)
    shutil.copyfile(tmp / "b" / ids["b"] / "config.json", dead / "config.json")
    assert Store(into).run_ids() == []
    real_replace = os.replace

    def interrupted(src, dst):  # Ctrl-C just before a run folder is renamed into place
        if Path(src).is_dir():
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        merge([tmp / "a", tmp / "b"], into)
    monkeypatch.setattr(os, "replace", real_replace)
    assert Store(into).run_ids() == [] and no_leftovers(into)
    report = merged([tmp / "a", tmp / "b"], into)
    assert sorted(report.copied) == sorted([ids["a"], ids["b"]]) and report.ok


def test_dry_run_writes_nothing(stores):
    tmp, ids = stores
    into = tmp / "merged"
    report = merged([tmp / "a", tmp / "b"], into, dry_run=True)
    assert report.dry_run and sorted(report.copied) == sorted([ids["a"], ids["b"]])
    assert len(report.noise_copied) == 2 and "would copy 2 run(s)" in report.summary()
    assert not into.exists()
    merged([tmp / "a"], into)
    held = snapshot(into)
    report = merged([tmp / "a", tmp / "b"], into, dry_run=True)
    assert report.already == [ids["a"]] and report.copied == [ids["b"]]
    assert snapshot(into) == held


def test_a_target_overlapping_a_source_is_a_usage_error(stores):
    tmp, _ids = stores
    for into in (tmp / "a", tmp / "a" / "merged", tmp):
        with pytest.raises(UsageError, match="overlap"):
            merge([tmp / "a"], into)
    with pytest.raises(UsageError, match="not a directory"):
        merge([tmp / "nowhere"], tmp / "merged")
    assert not (tmp / "a" / "merged").exists()


def test_the_merge_command_reports_and_exits_1_on_a_refusal(stores):
    """runner.py merge: JSON report, exit 0 when everything merged, 1 when a copy is refused."""
    import subprocess
    import sys
    tmp, ids = stores
    cmd = [sys.executable, "runner.py", "merge", str(tmp / "a"), str(tmp / "b"), "--into", str(tmp / "all"), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["ok"] and sorted(out["copied"]) == sorted([ids["a"], ids["b"]])
    bad = tmp / "b" / ids["b"]
    bad.rename(tmp / "b" / ("0" * 16))
    q = subprocess.run(cmd[:-1] + ["--into", str(tmp / "other")], capture_output=True, text=True)
    assert q.returncode == 1 and "does not match the folder name" in q.stdout
    r = subprocess.run([sys.executable, "runner.py", "merge", str(tmp / "a"), "--into", str(tmp / "a")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
