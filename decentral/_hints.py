"""Close-match suggestions for unknown names, and building a spec from a registry by name."""

from __future__ import annotations

import dataclasses
import difflib


def did_you_mean(name, valid) -> str:
    """``" Did you mean 'x'?"`` for the entry of ``valid`` closest to ``name``; "" when none is close."""
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def build_from_registry(kind: str, registry: dict, name, params: dict):
    """``registry[name](**params)`` for a dataclass spec; an unknown name or parameter raises a
    ValueError naming it (``kind`` says what it is, e.g. "model"), the close match and the valid ones."""
    if not isinstance(name, str) or name not in registry:
        raise ValueError(f"Unknown {kind} {name!r}.{did_you_mean(name, registry)} Valid: {', '.join(sorted(registry))}.")
    cls = registry[name]
    known = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"{kind} {name}: unknown parameter {unknown[0]!r}.{did_you_mean(unknown[0], known)} "
            f"Valid: {', '.join(sorted(known)) or 'none'}."
        )
    return cls(**params)
