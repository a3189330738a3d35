"""Measure what a rule guarantees: empirical (f, kappa)-robustness.

A rule F is (f, kappa)-robust (Allouah, Farhadkhani, Guerraoui, Gupta, Pinot, Stephan,
"Fixing by mixing", AISTATS 2023) when, for every inbox of K rows of which K - f are
honest,

    ||F(x) - mean_H||^2 <= kappa * (1 / |H|) sum_{i in H} ||x_i - mean_H||^2.

:func:`empirical_kappa` estimates the smallest such kappa from below: it draws the honest
rows from a distribution, lets each attack write the f Byzantine rows (an omniscient
attacker: it sees the honest rows and, in optimal modes, the receiver's rule), and takes
the largest ratio over trials. One compiled program per (rule, K, f, d): the trials are
``vmap``ped and every attack is a branch of the same program, so no Python loop runs
over trials or attacks.

The receiver is row 0, honest like rows 1..K-f-1; the Byzantine rows are the last f,
drawn from the same distribution before the attack rewrites them (attack ``none`` leaves
them: the rule's cost without an attack). Attacks that need the population (ALIE's
statistics, IPM's mean) see it as a star: the K - 1 other rows are the receiver's
neighbours.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

import attacks
from attacks._registry import did_you_mean

from . import aggregators

#: Honest distributions: name -> what its rows are.
DISTRIBUTIONS = {
    "gaussian": "N(0, I_d)",
    "heavy_tailed": "Student t with 3 degrees of freedom per coordinate (finite variance, heavy tails)",
    "clustered": "N(0, I_d) around two centres +-sqrt(d) u (u a random unit vector), alternating rows",
}


def honest_rows(key, distribution: str, count: int, dim: int):
    """f32[count, dim]: ``count`` honest rows drawn from ``distribution`` (DISTRIBUTIONS)."""
    noise_key, other_key = jax.random.split(key)
    noise = jax.random.normal(noise_key, (count, dim))
    if distribution == "gaussian":
        return noise
    if distribution == "heavy_tailed":
        chi2 = jnp.sum(jnp.square(jax.random.normal(other_key, (count, dim, 3))), axis=-1)
        return noise / jnp.sqrt(chi2 / 3.0)
    direction = jax.random.normal(other_key, (dim,))
    direction = direction / jnp.linalg.norm(direction)
    signs = jnp.where(jnp.arange(count) % 2 == 0, 1.0, -1.0)
    return noise + signs[:, None] * math.sqrt(dim) * direction[None, :]


@dataclasses.dataclass(frozen=True)
class Kappa:
    """Empirical kappa of one rule at one (K, f, d, distribution), per attack."""

    rule: str
    inbox: int
    f: int
    dim: int
    distribution: str
    trials: int
    by_attack: dict  #: attack name -> largest ratio over the trials (inf when non-finite)

    @property
    def worst(self) -> tuple[str, float]:
        """``(attack, kappa_hat)`` of the attack with the largest ratio."""
        name = max(self.by_attack, key=lambda a: self.by_attack[a])
        return name, self.by_attack[name]


def applicable_attacks(names=None) -> list[str]:
    """The attacks that write messages (all but data poisoning), or ``names`` checked:
    an unknown or non-applicable name raises ``ValueError`` with a close match."""
    usable = [name for name, cls in attacks.ATTACKS.items() if not cls().needs_labels]
    if names is None:
        return usable
    for name in names:
        if name not in attacks.ATTACKS:
            raise ValueError(f"unknown attack {name!r}.{did_you_mean(name, attacks.ATTACKS)} Valid: {', '.join(usable)}.")
        if name not in usable:
            raise ValueError(f"attack {name!r} poisons training data and writes no messages; it has no kappa. Valid: {', '.join(usable)}.")
    return list(names)


def _star(inbox: int, f: int) -> attacks.Graph:
    """The receiver (node 0) and its K - 1 neighbours; the last f are Byzantine."""
    honest = np.arange(inbox) < inbox - f
    edges = [(j, 0) for j in range(1, inbox)] + [(0, j) for j in range(1, inbox)]
    return attacks.Graph(honest=honest, edges=np.array(edges, dtype=np.int32))


def _ratio_program(rule, specs, inbox: int, f: int, dim: int, distribution: str):
    """A jitted ``keys [T] -> ratios f32[A, T]``: every attack on every trial's inbox."""
    graph = _star(inbox, f)
    states = [spec.init(graph, dim) for spec in specs]
    byzantine = jnp.arange(inbox) >= inbox - f
    mask = jnp.ones(inbox, bool)
    weights = jnp.ones(inbox, jnp.float32)

    def receiver_rule(rows, valid, row_weights):
        return rule(rows, f=f, mask=valid, weights=row_weights)

    def one_trial(key):
        draw_key, attack_key, rule_key = jax.random.split(key, 3)
        population = honest_rows(draw_key, distribution, inbox, dim)  # Byzantine slots: what they would send honestly
        honest = population[: inbox - f]
        center = jnp.mean(honest, axis=0)
        variance = jnp.mean(jnp.sum(jnp.square(honest - center[None, :]), axis=1))
        ratios = []
        for spec, state in zip(specs, states):
            prepare_key, message_key = jax.random.split(attack_key)
            extra, _ = spec.prepare(prepare_key, population, graph, state)
            ctx = attacks.Context(round=0, node=0, rule=receiver_rule, extra=extra)
            rows, valid = spec(message_key, population, byzantine, mask, weights, ctx)
            out = rule(rows, f=f, mask=valid, weights=weights, key=rule_key if rule.uses_key else None)
            error = jnp.sum(jnp.square(out - center))  # both [d]
            ratios.append(jnp.where(jnp.isfinite(error), error / variance, jnp.inf))
        return jnp.stack(ratios)

    return jax.jit(lambda keys: jax.vmap(one_trial, out_axes=1)(keys))


def check_setting(rule, *, inbox: int, f: int, distribution: str = "gaussian") -> aggregators.Rule:
    """The spec of ``rule`` for (K, f), checked: ``ValueError`` for an unknown rule or
    distribution, or an inbox too small for f under the rule."""
    spec = rule if isinstance(rule, aggregators.Rule) else aggregators.resolve(rule)
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}.{did_you_mean(distribution, DISTRIBUTIONS)} Valid: {', '.join(DISTRIBUTIONS)}.")
    if not 0 <= f < inbox:
        raise ValueError(f"f={f} Byzantine rows need 0 <= f < inbox={inbox}.")
    spec.check(inbox, f)
    return spec.with_largest_f(f)


def empirical_kappa(rule, *, inbox: int, f: int, dim: int, distribution: str = "gaussian", attack_names=None, trials: int = 32, seed: int = 0) -> Kappa:
    """Empirical kappa of ``rule`` (a name, config or spec): the largest
    ``||F(x) - mean_H||^2 / var_H`` over ``trials`` draws and each attack of ``attack_names``
    (default: every attack that writes messages, at its default parameters).

    Raises:
      ValueError: an unknown rule, attack or distribution, or an inbox too small for f.
    """
    spec = check_setting(rule, inbox=inbox, f=f, distribution=distribution)
    names = applicable_attacks(attack_names)
    specs = [attacks.resolve(name) for name in names]
    program = _ratio_program(spec, specs, inbox, f, dim, distribution)
    ratios = np.asarray(program(jax.random.split(jax.random.key(seed), trials)))
    label = spec.label if isinstance(spec, aggregators.Chain) else spec.name
    return Kappa(label, inbox, f, dim, distribution, trials, {name: float(row.max()) for name, row in zip(names, ratios)})


def _integers(what: str, values, minimum: int) -> list[int]:
    """``values`` (a list, or a comma-separated string "1,2") as ints >= ``minimum``."""
    if isinstance(values, str):
        try:
            values = [int(item) for item in values.split(",") if item.strip()]
        except ValueError:
            raise ValueError(f"{what} {values!r} must be comma-separated integers, e.g. 1,2") from None
    if not values or min(values) < minimum:
        raise ValueError(f"{what} {values!r} must list integers >= {minimum}")
    return list(values)


def measure(rules, *, inbox: int, fs, dims, attack_names=None, distribution="gaussian", trials=32, seed=0) -> list[Kappa]:
    """:func:`empirical_kappa` for every rule, f and d (in that order), every setting
    checked before the first compiles. ``fs``, ``dims`` and ``attack_names`` may be lists
    or comma-separated strings (as the command line gives them)."""
    fs, dims = _integers("f", fs, 0), _integers("dims", dims, 1)
    if inbox < 2 or trials < 1:
        raise ValueError(f"the inbox needs >= 2 rows and trials >= 1; got inbox={inbox}, trials={trials}")
    if isinstance(attack_names, str):
        attack_names = [name.strip() for name in attack_names.split(",") if name.strip()]
    names = applicable_attacks(attack_names)
    for rule in rules:
        for f in fs:
            check_setting(rule, inbox=inbox, f=f, distribution=distribution)
    return [
        empirical_kappa(rule, inbox=inbox, f=f, dim=dim, distribution=distribution, attack_names=names, trials=trials, seed=seed)
        for rule in rules
        for f in fs
        for dim in dims
    ]


def _cell(value: float) -> str:
    return "inf" if not math.isfinite(value) else f"{value:.3g}"


def format_table(results: list[Kappa], *, by_attack: bool = False) -> str:
    """A Markdown table: per (rule, f, d), the worst attack's kappa and the kappa without an
    attack (``none``); ``by_attack`` adds one column per attack."""
    first = results[0]
    attack_names = list(first.by_attack)
    head = f"K={first.inbox} rows, honest rows {first.distribution} ({DISTRIBUTIONS[first.distribution]}), {first.trials} trials"
    columns = ["rule", "f", "d", "kappa (worst)", "worst attack", "kappa (none)"] + (attack_names if by_attack else [])
    lines = [head, "", "| " + " | ".join(columns) + " |", "|" + "---|" * 3 + "---:|---|---:|" + "---:|" * (len(columns) - 6)]
    for result in results:
        name, worst = result.worst
        cells = [result.rule, str(result.f), str(result.dim), _cell(worst), name, _cell(result.by_attack.get("none", float("nan")))]
        cells += [_cell(result.by_attack[a]) for a in attack_names] if by_attack else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
