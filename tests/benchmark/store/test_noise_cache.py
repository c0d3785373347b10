"""Where a run's noise artifact is cached: under the store's ``_noise/``, in one folder per dataset
whose name (the cache key) is a single path component. Built from the raw dataset name,
``--dataset list:../../../x/list.txt`` wrote the artifact outside the store."""
import pytest

from benchmark.cli import main
from benchmark.store.noise_cache import cache_key, cache_path
from noise import NoiseSpec
from tests.benchmark.data.real_world_fixtures import write_image_folder


@pytest.mark.parametrize("name", ["list:../../../../x/list.txt", "list:/abs/x/list.txt", "folder:/data/../mine",
                                  "folder:C:\\data\\mine", "..", ".", "", "a/b", "list:x\0y", "é" * 200])
def test_a_cache_key_is_one_component_inside_noise(tmp_path, name):
    key = cache_key(name)
    assert key and "/" not in key and "\\" not in key and "\0" not in key and key not in (".", "..")
    path = cache_path(tmp_path, name, NoiseSpec("sym", 0.2), 0)
    assert path.parent == tmp_path / "_noise" / key
    assert path.resolve().is_relative_to((tmp_path / "_noise").resolve())


def test_registered_names_keep_their_folder_and_other_names_do_not_collide():
    # the stores made so far hold _noise/<name>/: their artifacts stay where they are
    for name in ("cifar10", "cifar100", "fashion_mnist", "synthetic_cifar10", "clothing1m", "webvision_mini"):
        assert cache_key(name) == name
    names = ["list:a/b.csv", "list:a_b.csv", "list:../a/b.csv", "folder:a/b.csv"]
    assert len({cache_key(n) for n in names}) == len(names)


def test_a_list_dataset_with_dots_writes_its_artifact_inside_the_store(tmp_path, monkeypatch, real_world_env):
    """The audit's case ($RUN --dataset list:../../../../DIR/x/list.txt --runs DIR/store), made so
    that the raw name, joined to the store's _noise/, would land in tmp/s1/s2/mine/ (outside the
    store)."""
    lst = write_image_folder(tmp_path, as_list=True)  # tmp/mine/list.csv
    cwd = tmp_path / "a" / "b" / "c" / "d"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    store = tmp_path / "s1" / "s2" / "store"
    dataset = f"list:../../../../{lst.relative_to(tmp_path)}"
    assert main(["run", "--dataset", dataset, "--model", "mlp", "--epochs", "1", "--noise", "none",
                 "--runs", str(store), "--wandb", "disabled"]) == 0
    (art,) = [p for p in tmp_path.rglob("*.npz")]
    assert art.parent.parent == store / "_noise" and art.parent.name == cache_key(dataset)
    assert sorted(p.name for p in (tmp_path / "s1" / "s2").iterdir()) == ["store"]
