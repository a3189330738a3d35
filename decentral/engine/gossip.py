"""One gossip step: every honest node gathers its inbox, the attack rewrites the Byzantine
rows, lost messages are masked out, and the node's rule combines the rest.

Receivers are processed per degree bucket in blocks of ``[run] block`` nodes
(``lax.map``), so memory is bounded by the block's B * K * d floats.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

import attacks

from .program import Program


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BoundRule:
    """A receiver's rule with its f bound (traced): the callable attacks see as ``ctx.rule``."""

    rule: Any
    f: Any
    key: Any

    def __call__(self, inbox, mask, weights):
        return self.rule(inbox, f=self.f, mask=mask, weights=weights, key=self.key)


def make_gossip(program: Program):
    """``gossip(own, sent, attack_state, key, round, knobs, inputs) -> (combined, attack_state)``.

    ``own`` are the vectors each node holds, ``sent`` what its neighbours receive from it
    (the same, except stragglers' stale ones). Byzantine nodes follow the protocol on the
    messages really sent to them (the attack rewrites only what honest nodes receive), so
    their own vector, which ``none`` sends and attacks may start from, is what an honest
    node in their place would hold. Crashed nodes keep their own vector; messages from
    crashed nodes stop arriving from ``crash_round`` on. The attack's ``prepare`` gets
    ``network=None``: attacks keep what they need of the graph in the state their
    ``init`` builds. The tables of the round come from the network's ``tables_at``.
    """

    def receive(own, sent, extra, round_index, knobs, inputs, node_args):
        node, neighbors, mask, weights, key = node_args
        k_attack, k_loss, k_rule = jax.random.split(key, 3)
        inbox = sent[neighbors].at[0].set(own[node])
        slots = jnp.arange(neighbors.shape[0])
        byz_slot = inputs.byzantine[neighbors] & mask & (slots > 0)
        mask = mask & ~(inputs.crashed[neighbors] & (round_index >= knobs.crash_round) & (slots > 0))
        f = knobs.f_nodes[node]
        rule_key = k_rule if knobs.rule.uses_key else None
        ctx = attacks.Context(round=round_index, node=node, rule=BoundRule(knobs.rule, f, rule_key), extra=extra)
        attacked, attacked_mask = knobs.attack(k_attack, inbox, byz_slot, mask, weights, ctx)
        # the attack targets honest receivers; a Byzantine node combines what was really sent
        colluder = inputs.byzantine[node]
        inbox = jnp.where(colluder, inbox, attacked)
        mask = jnp.where(colluder, mask, attacked_mask)
        delivered = (jax.random.uniform(k_loss, mask.shape) >= knobs.message_loss) | (slots == 0)
        return knobs.rule(inbox, f=f, mask=mask & delivered, weights=weights, key=rule_key)

    def gossip(own, sent, attack_state, key, round_index, knobs, inputs):
        k_prepare, key = jax.random.split(key)
        extra, attack_state = knobs.attack.prepare(k_prepare, own, None, attack_state)
        updated = own
        keep = inputs.crashed & (round_index >= knobs.crash_round)
        for index, table in enumerate(program.network_kind.tables_at(inputs.tables, round_index, key)):
            nodes = table["nodes"]
            keys = jax.random.split(jax.random.fold_in(key, index), nodes.shape[0])
            args = (nodes, table["neighbors"], table["mask"], table["weights"], keys)
            combined = jax.lax.map(
                lambda node_args: receive(own, sent, extra, round_index, knobs, inputs, node_args),
                args,
                batch_size=program.block or nodes.shape[0],
            )
            updated = updated.at[nodes].set(jnp.where(keep[nodes][:, None], own[nodes], combined))
        return updated, attack_state

    return gossip
