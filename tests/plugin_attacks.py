"""A user's own attacks, loaded as plug-ins in test_registry.py:
``resolve("tests.plugin_attacks:Scaled")``, ``resolve("tests.plugin_attacks:opposite")``
and ``resolve("tests.plugin_attacks:registered_opposite")`` (registered at import)."""

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


def registered_opposite(key, inbox, byz_slot, mask, weights, ctx, *, scale=1):
    """``opposite``, registered below with ``scale`` static: its plug-in path keeps that."""
    return opposite(key, inbox, byz_slot, mask, weights, ctx, scale=scale)


attacks.register("plugin_registered_opposite", registered_opposite, static=("scale",))
