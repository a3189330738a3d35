"""Strict JAX settings for the whole test suite (no silent rank promotion), a private compilation
cache for the CLI, and reproducible property tests in CI (``CI=true``: hypothesis draws
the same examples every run; locally it keeps exploring new ones)."""

import os
import tempfile

import jax
from hypothesis import settings

jax.config.update("jax_numpy_rank_promotion", "raise")

# CLI calls (in-process and subprocesses) share one compilation cache per test process (per
# pytest-xdist worker), never the user's own cache.
os.environ["DECENTRAL_COMPILATION_CACHE"] = tempfile.mkdtemp(prefix="decentral-jax-cache-")

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
