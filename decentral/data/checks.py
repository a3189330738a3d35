"""Argument checks shared by the partitions, the synthetic generators and the dataset specs."""

from __future__ import annotations

import numbers


def node_count(function: str, num_nodes) -> int:
    """``num_nodes`` as an int; a ValueError naming ``function`` unless it is a positive int."""
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, numbers.Integral) or num_nodes < 1:
        raise ValueError(f"{function}: num_nodes must be a positive int; got {num_nodes!r}.")
    return int(num_nodes)


def positive(owner: str, name: str, value, *, integer: bool = False, zero: bool = False):
    """``value`` as an int (``integer``) or float; a ValueError naming ``owner`` and ``name`` unless it is
    positive (non-negative with ``zero``)."""
    kind = numbers.Integral if integer else numbers.Real
    ok = not isinstance(value, bool) and isinstance(value, kind) and (value >= 0 if zero else value > 0)
    if not ok:
        what = "int" if integer else "number"
        raise ValueError(f"{owner}: {name} must be a {'non-negative' if zero else 'positive'} {what}; got {value!r}.")
    return int(value) if integer else float(value)
