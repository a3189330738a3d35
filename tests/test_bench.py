"""The aggregator benchmark times rounds the way the engine runs them."""

import jax.numpy as jnp
import numpy as np

from decentral import aggregators as agg
from decentral.bench import _aggregate_all


def test_each_round_writes_into_the_previous_outputs_buffer():
    inboxes = jnp.asarray(np.random.default_rng(0).normal(size=(6, 5, 8)).astype(np.float32))
    keys = jnp.zeros((6, 2), jnp.uint32)
    previous = jnp.zeros((6, 8), jnp.float32)
    fn = _aggregate_all(agg.resolve("mean"), block=3)
    output = fn(inboxes, 0, keys, previous)
    assert previous.is_deleted()  # donated: the output reuses its (already mapped) memory
    np.testing.assert_allclose(np.asarray(output), np.asarray(inboxes).mean(axis=1), rtol=1e-6)
