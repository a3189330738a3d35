"""The public rule functions, derived from their specs.

``public_function(Krum)`` is ``krum(x, *, f=0, mask=None, weights=None, key=None,
variant="paper")``: the common arguments, then the spec's hyperparameters as keyword-only
arguments with the spec's field defaults, in field order. Its docstring is the spec's.
Calling it builds the spec from the hyperparameters (validating them before ``x`` is
read) and applies it. Defaults and documentation are thus written once, on the spec.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

_KEYWORD = inspect.Parameter.KEYWORD_ONLY

#: The arguments every rule takes, before its hyperparameters.
COMMON = (
    inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("f", _KEYWORD, default=0),
    inspect.Parameter("mask", _KEYWORD, default=None),
    inspect.Parameter("weights", _KEYWORD, default=None),
    inspect.Parameter("key", _KEYWORD, default=None),
)


def public_function(spec: type) -> Callable:
    """The function ``spec.name(x, *, f=0, mask=None, weights=None, key=None, **fields)``."""
    hyperparameters = [inspect.Parameter(field.name, _KEYWORD, default=field.default) for field in dataclasses.fields(spec)]
    signature = inspect.Signature([*COMMON, *hyperparameters])

    def function(*args, **kwargs):
        arguments = signature.bind(*args, **kwargs)
        arguments.apply_defaults()
        given = arguments.arguments
        rule = spec(**{parameter.name: given[parameter.name] for parameter in hyperparameters})
        return rule(given["x"], f=given["f"], mask=given["mask"], weights=given["weights"], key=given["key"])

    function.__name__ = function.__qualname__ = spec.name
    function.__module__ = spec.__module__
    function.__doc__ = spec.__doc__
    function.__signature__ = signature
    return function
