"""Checks of the arguments the figure functions of :mod:`decentral.plots` take: file
formats, lists of series, and the shapes of their arrays. Each raises a ValueError that
names the function, the argument and the fix."""

import numpy as np

from ._hints import did_you_mean

#: The file formats `save` writes; the first two are the default.
FORMATS = ("png", "svg", "pdf")


def check_formats(function: str, formats) -> tuple[str, ...]:
    """Return `formats` as a tuple of distinct known names, or raise."""
    if isinstance(formats, str):
        raise ValueError(
            f"{function}: formats must be a sequence of names; got the string {formats!r}. Use ({formats!r},)."
        )
    formats = tuple(dict.fromkeys(formats))
    if not formats:
        raise ValueError(f"{function}: formats is empty; nothing would be written. Valid: {', '.join(FORMATS)}.")
    for name in formats:
        if name not in FORMATS:
            raise ValueError(f"{function}: unknown format {name!r}.{did_you_mean(name, FORMATS)} Valid: {', '.join(FORMATS)}.")
    return formats


def check_items(function: str, name: str, items, kind: type) -> list:
    """Return `items` as a non-empty list of `kind`, or raise."""
    items = list(items)
    if not items:
        raise ValueError(f"{function}: {name} is empty; pass at least one {kind.__name__}.")
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            raise ValueError(f"{function}: {name}[{index}] is a {type(item).__name__}, not a {kind.__name__}.")
    return items


def vector(where: str, name: str, value) -> np.ndarray:
    """`value` as a non-empty float[P], or raise."""
    array = np.asarray(value, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{where}: {name} must be a non-empty 1-D array; got shape {array.shape}.")
    return array


def repeats(where: str, name: str, value, length: int, along: str) -> np.ndarray:
    """`value` as float[length, R] with R >= 1, or raise naming the argument and the shapes."""
    array = np.asarray(value, dtype=float)
    if array.ndim != 2 or array.shape[0] != length or array.shape[1] == 0:
        raise ValueError(
            f"{where}: {name} has shape {array.shape} but {along} has {length} entries; {name} must be "
            f"[{length}, R] with one column per repeat (a single repeat: {name}[:, None])."
        )
    return array
