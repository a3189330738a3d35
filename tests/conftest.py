"""Strict JAX settings for the whole test suite (STYLE.md, rule 16), and reproducible
property tests in CI (``CI=true``: hypothesis draws the same examples every run; locally
it keeps exploring new ones)."""

import os

import jax
from hypothesis import settings

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
