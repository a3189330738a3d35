"""Strict JAX settings for the whole test suite (STYLE.md, rule 16)."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
