"""``decentral demo``: robust gossip averaging on a graph with Byzantine nodes, rule by rule.

A short, download-free scenario that exercises the rules, the topologies and the network
tables together (the full training engine is tracked in its own issue): honest nodes start
from noisy copies of a common vector and only gossip; Byzantine nodes send each receiver
its own vector shifted by ``attack_size`` along a fixed direction (a pull attack, tailored
per receiver). Each honest node combines its inbox with the rule, every round, vectorized
over nodes (``vmap``) and rounds (``lax.scan``).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

import topologies

from . import aggregators as agg
from .network import from_graph
from .testing import largest_f

DEMO_RULES = (
    "mean",
    "median",
    "trimmed_mean",
    "krum",
    "geometric_median",
    "nna",
    "ios",
    "clipped_gossip",
    "cs_plus",
    ["nnm", "trimmed_mean"],
)


@dataclasses.dataclass(frozen=True)
class DemoRow:
    """One rule's outcome: how far honest nodes drifted and how much they still disagree."""

    rule: str
    f: int
    drift: float
    disagreement: float
    seconds: float


def _rule_label(config) -> str:
    return "+".join(config) if isinstance(config, list) else config


def run_demo(
    *, nodes=64, neighbors_per_side=3, byzantine=8, dim=32, rounds=30, attack_size=10.0, f=2, seed=0, rules=DEMO_RULES
) -> list[DemoRow]:
    """Run the demo scenario for each rule; returns one :class:`DemoRow` per rule."""
    graph = topologies.small_world(nodes, neighbors_per_side, 0.2, seed=seed)
    byzantine_ids = topologies.place(graph, byzantine, "random", seed=seed + 1)
    network = from_graph(graph, byzantine=byzantine_ids)
    rng = np.random.default_rng(seed + 2)
    start = (rng.normal(size=dim) + 0.3 * rng.normal(size=(nodes, dim))).astype(np.float32)
    direction = rng.normal(size=dim).astype(np.float32)
    direction *= attack_size / np.linalg.norm(direction)
    honest = ~network.byzantine
    rows = []
    for config in rules:
        spec = agg.resolve(config)
        rule_f = min(f, largest_f(spec, int(network.inbox_sizes[honest].min())))
        began = time.perf_counter()
        final = np.asarray(_simulate(network, spec, rule_f, jnp.asarray(start), jnp.asarray(direction), rounds))
        seconds = time.perf_counter() - began
        honest_start, honest_final = start[honest], final[honest]
        rows.append(
            DemoRow(
                rule=_rule_label(config),
                f=rule_f,
                drift=float(np.linalg.norm(honest_final.mean(0) - honest_start.mean(0))),
                disagreement=float(np.linalg.norm(honest_final - honest_final.mean(0), axis=1).max()),
                seconds=seconds,
            )
        )
    return rows


def _simulate(network, spec, f, params, direction, rounds):
    """``rounds`` of robust gossip; Byzantine nodes' own values never change."""
    byzantine = jnp.asarray(network.byzantine)
    buckets = [
        (jnp.asarray(b.nodes), jnp.asarray(b.neighbors), jnp.asarray(b.mask), jnp.asarray(b.weights))
        for b in network.buckets
    ]
    keys = jax.random.split(jax.random.key(0), rounds)

    def gossip(params, key):
        updated = params
        for nodes, neighbors, mask, weights in buckets:
            inbox = params[neighbors]  # [n_b, K, d]
            attacked = byzantine[neighbors][..., None]
            inbox = jnp.where(attacked, inbox[:, :1, :] + direction[None, None, :], inbox)
            node_keys = jax.random.split(key, nodes.shape[0])
            combined = jax.vmap(lambda x, m, w, k: spec(x, f=f, mask=m, weights=w, key=k))(inbox, mask, weights, node_keys)
            updated = updated.at[nodes].set(jnp.where(byzantine[nodes][:, None], params[nodes], combined))
        return updated, None

    final, _ = jax.jit(lambda p: jax.lax.scan(gossip, p, keys))(params)
    return final


def format_demo(rows: list[DemoRow], **scenario) -> str:
    """The demo's results as a Markdown table."""
    head = ", ".join(f"{key}={value}" for key, value in scenario.items())
    lines = [
        f"Robust gossip averaging ({head}).",
        "drift: distance of the honest average from where it started (lower is better);",
        "disagreement: largest distance of an honest node from the honest average.",
        "",
        "| rule | f | drift | disagreement | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row.rule} | {row.f} | {row.drift:.3f} | {row.disagreement:.3f} | {row.seconds:.2f} |")
    return "\n".join(lines)
