"""merge does not trust a received store's file system: links, named pipes, oversized or too deeply
nested files and values of the wrong type refuse the one run that holds them, never the merge,
and nothing outside the source is ever read into the target (benchmark/store/received.py)."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.config import config_from_dict
from benchmark.store import Store
from benchmark.store.merge import _plan_artifact
from benchmark.store.received import MAX_JSON_DEPTH, MAX_RUN_FILE_BYTES
from benchmark.store.verify import read_run
from noise import load_artifact, save_artifact
from tests.benchmark.store.test_merge import artifact_of, merged, no_leftovers
from tests.conftest import ROOT

SECRET = b"aws_secret_access_key = do-not-copy-me\n"


@pytest.fixture
def secret(tmp_path) -> Path:
    """A credentials file outside every store."""
    path = tmp_path / "home" / ".aws" / "credentials"
    path.parent.mkdir(parents=True)
    path.write_bytes(SECRET)
    return path


def holds_secret(root: Path) -> bool:
    return any(p.is_file() and SECRET in p.read_bytes() for p in root.rglob("*") if not p.is_symlink())


def refusal(report, rid: str) -> str:
    (why,) = [why for r, _where, why in report.refused if r == rid]
    return why


def rehash(run_dir: Path, **fields) -> str:
    """Change config.json's top-level ``fields`` as a forger would: the run id recomputed and the
    folder renamed to it, so that only the changed values are wrong. Returns the new run id."""
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg.update(fields)
    rid = config_from_dict(cfg).run_id(cfg["noise_artifact"]["sha256"], cfg["hp_resolved"], cfg["revisions"])
    cfg["run_id"] = rid
    (run_dir / "config.json").write_text(json.dumps(cfg))
    run_dir.rename(run_dir.parent / rid)
    return rid


def test_a_linked_meta_json_is_refused_and_what_it_points_at_never_copied(stores, secret):
    tmp, ids = stores
    meta = tmp / "a" / ids["a"] / "meta.json"
    meta.unlink()
    meta.symlink_to(secret)
    into = tmp / "merged"
    report = merged([tmp / "a", tmp / "b"], into)
    assert not report.ok and report.copied == [ids["b"]]
    assert refusal(report, ids["a"]) == "meta.json is a symbolic link (links are never followed)"
    assert not (into / ids["a"]).exists() and not holds_secret(into) and no_leftovers(into)


def test_a_linked_run_folder_is_refused(stores):
    tmp, ids = stores
    # a store whose run folder is a link to a run elsewhere (here a real one, so only the link is wrong)
    (tmp / "linked").mkdir()
    (tmp / "linked" / ids["a"]).symlink_to(tmp / "a" / ids["a"], target_is_directory=True)
    into = tmp / "merged"
    report = merged([tmp / "linked", tmp / "b"], into)
    assert report.copied == [ids["b"]] and not (into / ids["a"]).exists()
    assert refusal(report, ids["a"]).startswith("the run folder is a symbolic link")


@pytest.mark.parametrize("where", ["metrics.csv", "notes.txt", "extra/deeper/file"])
@pytest.mark.parametrize("what", ["link", "named pipe"])
def test_links_and_special_files_anywhere_in_a_run_folder_are_refused(stores, secret, no_hang, where, what):
    tmp, ids = stores
    path = tmp / "a" / ids["a"] / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    if what == "link":
        path.symlink_to(secret)
    else:
        os.mkfifo(path)
    into = tmp / "merged"
    report = merged([tmp / "a", tmp / "b"], into)
    assert report.copied == [ids["b"]] and not (into / ids["a"]).exists() and not holds_secret(into)
    kind = "a symbolic link" if what == "link" else "a named pipe"
    assert refusal(report, ids["a"]).startswith(f"{where} is {kind} (")


def test_a_linked_noise_artifact_is_refused(stores, secret):
    tmp, ids = stores
    artifact = artifact_of(tmp / "a")
    moved = tmp / "elsewhere.npz"  # the right labels, but not held by the store itself
    artifact.rename(moved)
    artifact.symlink_to(moved)
    into = tmp / "merged"
    report = merged([tmp / "a"], into)
    why = refusal(report, ids["a"])
    assert "is a symbolic link, not a regular file" in why and why.startswith("_noise/")
    assert not (into / ids["a"]).exists() and not list(into.rglob("*.npz"))


def test_a_result_nested_100000_deep_refuses_that_run_and_the_merge_goes_on(stores):
    tmp, ids = stores
    (tmp / "b" / ids["b"] / "result.json").write_text("[" * 100_000 + "]" * 100_000)
    into = tmp / "merged"
    cmd = [sys.executable, "runner.py", "merge", str(tmp / "a"), str(tmp / "b"), "--into", str(into)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert f"Refused {ids['b']} ({tmp / 'b' / ids['b']}): result.json nests deeper" in p.stdout
    assert Store(into).run_ids() == [ids["a"]] and no_leftovers(into)


def test_json_nested_deeper_than_the_suite_writes_is_refused(stores):
    tmp, ids = stores
    deep = {"x": 1}
    for _ in range(MAX_JSON_DEPTH):  # deep, yet well within what Python's parser follows
        deep = {"x": deep}
    path = tmp / "b" / ids["b"] / "meta.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "extra": deep}))
    report = merged([tmp / "b"], tmp / "merged")
    assert refusal(report, ids["b"]) == (f"meta.json nests {MAX_JSON_DEPTH + 2} levels deep "
                                         f"(at most {MAX_JSON_DEPTH} are accepted)")


def test_an_oversized_file_is_refused_unread(stores):
    tmp, ids = stores
    with open(tmp / "b" / ids["b"] / "result.json", "r+b") as f:
        f.truncate(MAX_RUN_FILE_BYTES + 1)  # sparse: no disk used, and never read
    report = merged([tmp / "a", tmp / "b"], tmp / "merged")
    assert report.copied == [ids["a"]]
    assert f"result.json is too large ({MAX_RUN_FILE_BYTES + 1} bytes" in refusal(report, ids["b"])


def test_a_file_that_is_not_json_is_refused(stores):
    tmp, ids = stores
    (tmp / "b" / ids["b"] / "meta.json").write_bytes(b"\xff\xfe not json")
    report = merged([tmp / "a", tmp / "b"], tmp / "merged")
    assert report.copied == [ids["a"]] and "meta.json is not valid JSON" in refusal(report, ids["b"])


@pytest.mark.parametrize("path, value", [(("revisions", "harness"), "x"),
                                         (("noise_artifact", "num_samples"), [1438]),
                                         (("streams", "noise"), 1e308)])
def test_values_of_another_type_refuse_the_run_not_the_merge(stores, path, value):
    """Values that parse as JSON but are not what the suite writes (they raised ValueError,
    TypeError or OSError out of the merge before)."""
    tmp, ids = stores
    cfg_file = tmp / "b" / ids["b"] / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg[path[0]][path[1]] = value
    cfg_file.write_text(json.dumps(cfg))
    report = merged([tmp / "a", tmp / "b"], tmp / "merged")
    assert report.copied == [ids["a"]] and len(report.refused) == 1 and refusal(report, ids["b"])


def test_a_noise_path_leaving_the_stores_is_neither_read_nor_written(stores):
    """The audit's crafted store (C): a dataset named so that its noise cache path would climb
    out of the store, the run id recomputed, and the matching artifact planted where that path
    leads from the source. Merge on main read the planted file and wrote it, with its .lock, where
    the path leads from the target. The cache key of such a name is now one folder inside
    ``_noise/`` (noise_cache.cache_key): the planted file is never read, the run merges without an
    artifact (the target rebuilds it when a run needs it) and nothing appears outside the target."""
    tmp, ids = stores
    name = "folder:" + "../" * 4 + "planted"  # from <store>/_noise/ up to the store's parent
    rid = rehash(tmp / "b" / ids["b"], dataset=name)
    original = artifact_of(tmp / "b")
    (tmp / "b" / "_noise" / "folder:..").mkdir()  # so the OS could resolve the climb
    planted = tmp / "planted" / original.name
    planted.parent.mkdir()
    save_artifact(dataclasses.replace(load_artifact(original), dataset=name), planted)
    into = tmp / "deep" / "merged"  # the raw name leads to tmp/deep/planted from here
    report = merged([tmp / "a", tmp / "b"], into)
    assert sorted(report.copied) == sorted([ids["a"], rid]) and report.ok, report.summary()
    assert sorted(p.name for p in (tmp / "deep").iterdir()) == ["merged"]
    assert [p.name for p in planted.parent.iterdir()] == [original.name]
    assert not any(".." in p.name for p in (into / "_noise").rglob("*")) if (into / "_noise").exists() else True
    assert main(["merge", str(tmp / "a"), str(tmp / "b"), "--into", str(tmp / "deep" / "again")]) == 0
    assert sorted(p.name for p in (tmp / "deep").iterdir()) == ["again", "merged"]


def test_the_target_is_never_written_through_a_noise_path_outside_it(stores):
    """merge's own guard where it builds the target's path, whatever a copy holds."""
    tmp, ids = stores
    copy = read_run(tmp / "b" / ids["b"])
    copy.noise_path = Path("_noise") / ".." / ".." / "planted" / copy.noise_path.name
    artifacts: dict = {}
    why = _plan_artifact([copy], tmp / "merged", artifacts)
    assert why.startswith(f"its noise artifact path {copy.noise_path} leaves the target's _noise folder")
    assert artifacts == {} and not (tmp / "merged").exists()
