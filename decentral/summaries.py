"""Summaries of a per-node metric over the honest nodes (numpy only).

The engine's :meth:`~decentral.engine.Result.over_honest` and the results database's
per-evaluation rows both call :func:`honest_summaries`, so they always agree.
"""

from __future__ import annotations

import numpy as np


def honest_summaries(values, quantiles=(0.1, 0.5, 0.9)) -> dict:
    """A per-node metric summarised over its last axis (the honest nodes): ``{"mean",
    "min", "max", "q10", "q50", "q90"}``."""
    values = np.asarray(values)
    out = {"mean": values.mean(axis=-1), "min": values.min(axis=-1), "max": values.max(axis=-1)}
    for q in quantiles:
        out[f"q{round(q * 100)}"] = np.quantile(values, q, axis=-1)
    return out
