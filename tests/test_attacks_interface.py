"""What an engine asks an attack besides its messages: which training data it poisons
(``poisons``), that data (``poison``) and the rounds it acts in (``active``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attacks

NUM_CLASSES = 10


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(4, 6, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, NUM_CLASSES, size=(4, 6)), jnp.int32)
    return x, y


@pytest.mark.parametrize("name", sorted(attacks.ATTACKS))
def test_poisons_names_parts_of_the_training_data(name):
    spec = attacks.ATTACKS[name]()
    assert isinstance(spec.poisons, frozenset) and spec.poisons <= {"inputs", "labels"}
    assert spec.needs_labels == ("labels" in spec.poisons)


@pytest.mark.parametrize("name", sorted(name for name, cls in attacks.ATTACKS.items() if not cls.poisons))
def test_an_attack_that_poisons_nothing_returns_the_data_unchanged(name):
    x, y = _data()
    px, py = attacks.ATTACKS[name]().poison(x, y, NUM_CLASSES)
    assert px is x and py is y


def test_label_flip_flips_the_labels_and_leaves_the_inputs():
    spec = attacks.resolve("label_flip")
    assert spec.poisons == frozenset({"labels"}) and spec.needs_labels
    x, y = _data(1)
    px, py = jax.jit(spec.poison, static_argnums=2)(x, y, NUM_CLASSES)
    np.testing.assert_array_equal(px, x)
    np.testing.assert_array_equal(py, NUM_CLASSES - 1 - np.asarray(y))
    assert py.dtype == y.dtype
    np.testing.assert_array_equal(attacks.LabelFlip.flip_labels(y, NUM_CLASSES), py)
    np.testing.assert_array_equal(spec.poison(x, jnp.arange(3), 3)[1], [2, 1, 0])


def test_active_is_the_half_open_round_interval():
    spec = attacks.resolve("zero", start_round=2, stop_round=5)
    assert [bool(spec.active(r)) for r in range(7)] == [False, False, True, True, True, False, False]
    default = attacks.resolve("zero")
    assert bool(default.active(0)) and bool(default.active(attacks.Zero().stop_round - 1))
    assert not bool(default.active(attacks.Zero().stop_round))
    assert not bool(attacks.resolve("zero", start_round=3, stop_round=3).active(3))


def test_active_is_traced_and_matches_the_message_path():
    """Sweeping the rounds reuses one compilation, and the Byzantine rows change exactly when active."""
    x = jnp.ones((4, 3))
    byz = jnp.array([False, False, True, True])

    @jax.jit
    def both(spec, r):
        out, _ = spec(jax.random.key(0), x, byz, None, None, attacks.Context(round=r))
        return spec.active(r), jnp.all(out[2:] == 0.0)

    for start, stop in ((0, 1), (2, 4), (3, 3)):
        spec = attacks.resolve("zero", start_round=start, stop_round=stop)
        for r in range(6):
            active, wrote = both(spec, jnp.int32(r))
            assert active.dtype == jnp.bool_ and bool(active) == bool(wrote) == (start <= r < stop), (start, stop, r)
    assert both._cache_size() == 1
