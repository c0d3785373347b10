"""`runner.py pack`: the manifest and its checksums, verification before a pack is trusted, and
nothing half-written."""
import errno
import hashlib
import json
import os
import re
import shutil

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.data import DataError, clear_cache, load_dataset
from benchmark.data.files.pack import check_pack, write_pack
from benchmark.data.real_world import listing_for
from tests.benchmark.data.real_world_fixtures import write_food101n


@pytest.fixture
def food(real_world_env):
    write_food101n(real_world_env / "data", per_class=3, test_per_class=1)
    return real_world_env / "data"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pack_writes_arrays_and_a_manifest_that_checks_them(food, tmp_path, capsys):
    assert main(["pack", "--dataset", "food101n", "--data-dir", str(food), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    pack = tmp_path / "cache" / "packs" / "food101n@256"
    assert out["pack"] == str(pack) and out["state"] == "written"
    manifest = json.loads((pack / "manifest.json").read_text())
    assert set(manifest["splits"]) == {"train", "test"}
    for key, entry in manifest["splits"].items():
        arr = np.load(pack / f"{key}.npy", allow_pickle=False)
        assert arr.dtype == np.uint8 and arr.shape == (entry["rows"], 3, 256, 256)
        assert entry["sha256"] == _sha(pack / f"{key}.npy")
    assert main(["pack", "--dataset", "food101n", "--data-dir", str(food)]) == 0  # verified, kept
    assert "pack verified" in capsys.readouterr().out


def test_a_pack_holds_the_decoded_pixels_and_is_used_by_the_loader(food, tmp_path, monkeypatch):
    files = load_dataset("food101n", data_dir=str(food))
    assert "(pack " not in files.source
    write_pack(listing_for("food101n", str(food)), tmp_path / "cache" / "packs" / "food101n@256")
    clear_cache()
    packed = load_dataset("food101n", data_dir=str(food))
    assert "(pack " in packed.source
    assert np.array_equal(packed.train_x.numpy(), files.train_x.numpy())
    monkeypatch.setenv("NLB_MEMORY_BUDGET_GB", "0")
    clear_cache()
    streamed = load_dataset("food101n", data_dir=str(food))
    assert not hasattr(streamed.train_x, "numpy")  # streamed from the memory map
    assert np.array_equal(streamed.train_x.materialise().numpy(), files.train_x.numpy())


def test_a_corrupt_or_stale_pack_is_refused(food, tmp_path):
    listing = listing_for("food101n", str(food))
    pack = tmp_path / "cache" / "packs" / "food101n@256"
    write_pack(listing, pack)
    check_pack(pack, listing)  # verified once: a stamp is kept
    arr = pack / "train.npy"
    data = bytearray(arr.read_bytes())
    data[-1] ^= 0xFF  # one pixel changed, same size
    arr.write_bytes(bytes(data))
    with pytest.raises(DataError, match="differs from the manifest's"):
        check_pack(pack, listing)
    clear_cache()
    with pytest.raises(DataError, match="corrupt or changed"):  # the loader does not skip it
        load_dataset("food101n", data_dir=str(food))
    # a copy tool that sets the modification time back does not hide the change
    arr.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 0xFF]))  # the packed bytes again
    check_pack(pack, listing)
    before = arr.stat()
    arr.write_bytes(bytes(data))
    os.utime(arr, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(DataError, match="differs from the manifest's"):
        check_pack(pack, listing)
    # the CLI says how to recover, instead of verifying the same broken pack forever
    assert main(["pack", "--dataset", "food101n", "--data-dir", str(food)]) == 1
    # lists changed since the pack was made (two images swapped): another listing digest
    tsv = food / "Food-101N_release" / "meta" / "imagelist.tsv"
    lines = tsv.read_text().splitlines()
    tsv.write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")
    with pytest.raises(DataError, match="made from other file lists"):
        check_pack(pack, listing_for("food101n", str(food)))


def test_an_object_array_in_a_pack_is_never_unpickled(food, tmp_path):
    listing = listing_for("food101n", str(food))
    pack = tmp_path / "p"
    write_pack(listing, pack)
    bad = np.empty(3, dtype=object)
    np.save(pack / "train.npy", bad, allow_pickle=True)
    manifest = json.loads((pack / "manifest.json").read_text())  # a manifest made to match
    manifest["splits"]["train"].update(sha256=_sha(pack / "train.npy"), bytes=(pack / "train.npy").stat().st_size)
    (pack / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="not a plain uint8 array"):
        check_pack(pack, listing)


def test_an_interrupted_pack_leaves_nothing(food, tmp_path):
    listing = listing_for("food101n", str(food))
    out = tmp_path / "packs" / "x"

    def stop(split, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_pack(listing, out, progress=stop)
    assert not out.exists() and list((tmp_path / "packs").iterdir()) == []


def test_pack_refuses_what_it_cannot_pack(food, tmp_path, capsys):
    assert main(["pack", "--dataset", "cifar10"]) == 2
    assert "Valid: clothing1m, food101n, webvision_mini" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    assert main(["pack", "--dataset", "food101n", "--data-dir", str(food), "--out", str(tmp_path / "busy")]) == 2
    assert main(["pack", "--dataset", "clothing1m", "--data-dir", str(tmp_path / "none")]) == 2
    assert "clothing1m expects" in capsys.readouterr().err


def test_a_pack_from_another_decoder_is_refused(food, tmp_path):
    listing = listing_for("food101n", str(food))
    pack = tmp_path / "p"
    write_pack(listing, pack)
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["decoder"].startswith("Pillow ") and manifest["crop_size"] == 224
    manifest["decoder"] = "Pillow 1.0"
    (pack / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="decoded by Pillow 1.0.*remove .* and run `runner.py pack` again"):
        check_pack(pack, listing)
    (pack / "manifest.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a pack manifest"):
        check_pack(pack, listing)


def test_pack_removes_dead_temporaries_and_checks_the_disk(food, tmp_path, monkeypatch):
    listing = listing_for("food101n", str(food))
    out = tmp_path / "packs" / "food101n@256"
    dead = tmp_path / "packs" / "food101n@256.tmp-999999999"  # no such process
    dead.mkdir(parents=True)
    (dead / "train.npy").write_bytes(b"half")
    other = tmp_path / "packs" / "unrelated"
    other.mkdir()
    write_pack(listing, out)
    assert not dead.exists() and other.is_dir() and (out / "manifest.json").is_file()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(DataError, match=r"needs \d+\.\d MB, .* has 1\.0 kB free; free space"):
        write_pack(listing, tmp_path / "packs" / "second")
    assert sorted(p.name for p in (tmp_path / "packs").iterdir()) == ["food101n@256", "unrelated"]


def test_pack_on_a_read_only_or_full_disk_says_what_failed(food, tmp_path, monkeypatch, capsys):
    """F: both said "needs 0.0 GB, has 0.0 GB free" (a small dataset rounds to 0.0 GB, and a
    read-only disk reports no free space): now the cause, and sizes in a unit that shows them."""
    out = tmp_path / "packs" / "food"
    argv = ["pack", "--dataset", "food101n", "--data-dir", str(food), "--out", str(out)]
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=0))
    real_mkdir = os.mkdir

    def read_only(path, *args, **kw):  # the tests run as root, for whom no folder is read-only
        if ".tmp-" in str(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kw)

    monkeypatch.setattr(os, "mkdir", read_only)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the pack {out}: Read-only file system") and "GB" not in err, err
    monkeypatch.setattr(os, "mkdir", real_mkdir)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert re.search(r"needs \d+\.\d MB, \S+ has 0 bytes free \(the disk is full\)", err), err
    assert list((tmp_path / "packs").iterdir()) == []  # nothing half-written
