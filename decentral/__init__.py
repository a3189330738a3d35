"""decentral: a JAX simulator of Byzantine-robust decentralized learning.

The public entry points: :func:`simulate` runs a :class:`Scenario` (built in Python or read
by :func:`load_scenario` from TOML) and returns a :class:`Result`. The rules live in
``decentral.aggregators``, graphs in ``topologies``, attacks in ``attacks``. The entry
points load lazily, so ``import decentral.network`` stays numpy-only.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "Scenario": "decentral.scenario",
    "load_scenario": "decentral.scenario",
    "Result": "decentral.engine",
    "simulate": "decentral.engine",
}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'decentral' has no attribute {name!r}")
