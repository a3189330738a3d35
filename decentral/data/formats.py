"""Parsers of the dataset file formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10 python pickle batches."""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np


# IDX type codes (third magic byte) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when it starts with the gzip magic 1f 8b."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{path}: corrupt gzip file ({error}).") from None
    return raw


def read_idx(path) -> np.ndarray:
    """Parse an IDX file (the MNIST format), gzipped or not.

    Layout: magic = 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 sizes, then the
    values in C order, big-endian. Types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64 (MNIST images are 0x00000803, labels 0x00000801).

    Args:
        path: the file (gzip is detected by its magic bytes, not the name).

    Returns:
        np.ndarray of the sizes in the header, native byte order.

    Raises:
        ValueError: naming the file, when the magic number is wrong or the size in the
            header does not match the file's length (truncated or padded files).

    References:
        LeCun, Cortes, Burges, "The MNIST database of handwritten digits" (file format).
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes, too short for an IDX header (4-byte magic number).")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise ValueError(
            f"{path}: not an IDX file: magic number 0x{data[:4].hex()}; expected 0x0000TTDD "
            "(TT a type code such as 08 for uint8, DD the number of dimensions, e.g. 0x00000803 for images)."
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, the file has {len(data)}.")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: the IDX header says shape {tuple(dims)} of {dtype.name} ({expected} bytes in all), "
            f"but the file has {len(data)} bytes: truncated or corrupt."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only dicts, lists, bytes and numpy arrays: a data file cannot run code."""

    _ALLOWED = {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if module.startswith("numpy.core"):  # pickles written by numpy 1.x (CIFAR-10's own)
            module = "numpy._core" + module[len("numpy.core"):]
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a data batch holds only arrays and lists")
        return super().find_class(module, name)


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Parse one CIFAR-10 python batch (a pickled dict with ``data`` and ``labels``).

    ``data`` is uint8[N, 3072], each row the red, green then blue 32x32 planes in row-major
    order; it is returned as images uint8[N, 32, 32, 3] (NHWC). Only arrays, lists and
    bytes are unpickled (a restricted unpickler), so a data file cannot run code.

    Args:
        path: e.g. ``cifar-10-batches-py/data_batch_1``.

    Returns:
        (images uint8[N, 32, 32, 3], labels int32[N]).

    Raises:
        ValueError: naming the file, when it is not such a pickle, ``data`` is not
            [N, 3072] uint8, or the labels do not match N or lie outside 0..9.

    References:
        Krizhevsky, "Learning multiple layers of features from tiny images", 2009.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({type(error).__name__}: {error}).") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (a pickled dict); got a {type(batch).__name__}.")
    batch = {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path}: a CIFAR-10 batch needs keys 'data' and 'labels'; found {sorted(map(str, batch))}.")
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be uint8[N, 3072] (32x32 RGB planes); got {data.dtype}{list(data.shape)}.")
    labels = np.asarray(batch["labels"])
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {labels.size} labels for {data.shape[0]} images.")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: CIFAR-10 labels must be integers in 0..9.")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int32)
