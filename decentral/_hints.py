"""Close-match hints for error messages (pure Python, no JAX).

The same hint as ``attacks._registry.did_you_mean``, kept as a copy on purpose: the
scenario schema and the CLI must answer a typo before JAX is imported, and importing any
module of ``attacks`` loads JAX (the package fills its registry on import).
``tests/test_registry.py`` holds the two to one contract.
"""

from __future__ import annotations

import difflib


def did_you_mean(name, valid) -> str:
    """``" Did you mean 'x'?"`` for the entry of ``valid`` closest to ``name``; "" when none is close."""
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
