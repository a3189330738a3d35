"""A user's own attacks, loaded as plug-ins in test_registry.py:
``resolve("tests.plugin_attacks:Scaled")`` and ``resolve("tests.plugin_attacks:opposite")``."""

from typing import Any, ClassVar

import jax.numpy as jnp

import attacks

NOT_AN_ATTACK = 42


def opposite(key, inbox, byz_slot, mask, weights, ctx, *, scale=1.0):
    """Byzantine rows send ``-scale`` times the receiver's own vector."""
    del key, weights, ctx
    return jnp.where(byz_slot[:, None], -scale * inbox[0], inbox), mask


@attacks.attack_spec
class Scaled(attacks.Attack):
    """The same attack as a spec class: Byzantine rows send ``-scale * x_0``."""

    scale: Any = attacks.parameter(1.0, positive=True)
    name: ClassVar[str] = "plugin_scaled"

    def message(self, key, view, ctx):
        del key, ctx
        return -self.scale * view.own
