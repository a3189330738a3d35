"""attacks: Byzantine behaviours as pure functions over one receiver's inbox.

A leaf package: it imports numpy and JAX only, never ``decentral`` (``Graph.from_networkx``
accepts a networkx graph without importing networkx).

**The attack contract.** Every spec in :data:`ATTACKS` is a frozen dataclass registered as
a JAX pytree (numeric parameters traced, structural ones static) and is called on ONE
receiver::

    inbox, mask = spec(key, inbox, byz_slot, mask, weights, ctx)

- ``inbox: f32[K, d]``: the receiver's inbox as honestly gathered; row 0 is its own vector,
  a Byzantine slot holds what that Byzantine node would honestly send.
- ``byz_slot: bool[K]``: slots whose sender is Byzantine (never row 0: receivers are honest).
- ``mask: bool[K]`` (or None): valid slots. ``weights: f32[K]`` (or None): mixing weights.
- ``ctx``: a :class:`Context` (below).

It returns the inbox with only the valid Byzantine slots rewritten (honest and masked rows
are untouched bit for bit) and the mask (``crash`` clears the Byzantine slots). Outside
``[start_round, stop_round)`` (every spec has them, traced) the inbox is returned as is.
By default every Byzantine row of one inbox carries the same vector (``collusion=True``);
``collusion=False`` draws noise independently per row. Vectorise over receivers with
``jax.vmap`` or :func:`apply`.

**Context** (a pytree): ``round`` (int32), ``node`` (the receiver's id, int32; ``spectral``
reads it), ``rule`` (the receiver's aggregation rule as ``rule(inbox, mask, weights) ->
f32[d]``, used by ``optimal=True`` modes; a plain function is static, a pytree callable
such as a rule spec is traced; bind the rule's ``f`` in it), and ``extra`` (a dict: what
``prepare`` computed this round).

**Population step.** Attacks that look at the whole honest population (``scope="global"``,
``mimic``, ``spectral``) have, besides the per-receiver call::

    state = spec.init(graph, d)                                  # host side, once, numpy
    extra, state = spec.prepare(key, params, graph, state)       # once per round, jit-able
    ctx = attacks.Context(round=r, rule=rule, extra=extra)

``graph`` is an :class:`Graph`: ``honest: bool[n]`` and optionally ``edges: int32[E, 2]``
(``(src, dst)``: src is in dst's inbox), built in numpy outside jit
(``Graph.from_networkx(G, byzantine)``, ``Graph.from_adjacency(A, byzantine)``).
``init`` keeps what later rounds need in the state (the honest mask, the Fiedler vector);
``params: f32[n, d]`` are every node's honest messages of the round (Byzantine rows
ignored). ``spec.needs_population`` says whether to run them; the defaults return ``{}``.

**Data poisoning.** ``spec.poisons`` names the parts of the Byzantine nodes' training data
the attack poisons (a subset of ``{"inputs", "labels"}``; ``label_flip``: labels); while
``spec.active(round)`` (``start_round <= round < stop_round``) they train on
``spec.poison(x, y, num_classes)`` (``label_flip``: ``(x, num_classes - 1 - y)``). With
empty ``poisons`` it returns ``(x, y)`` unchanged.

**Scenario checks.** ``needs_graph`` (``spectral``), ``needs_labels`` (the attack poisons
labels: ``label_flip``) and ``needs_rule`` (optimal modes) are stated per spec;
``spec.check_scenario(graph=..., labels=..., rule=...)`` raises a ``ValueError`` at
scenario build time.

**Plug-ins.** ``register(name, spec)`` with an :class:`Attack` subclass (decorated with
:func:`attack_spec`, defining ``message(key, view, ctx)``) or a function
``fn(key, inbox, byz_slot, mask, weights, ctx, **params) -> (inbox, mask)`` (``static=``
names its parameters that are static fields); ``resolve("package.module:Name")`` loads one
from a config (a registered function's path: the class ``register`` made for it);
:func:`attacks.testing.check_attack` runs the contract suite on it.
"""

from . import _attacks as _attacks  # noqa: F401  (fills ATTACKS)
from ._attacks import ALIE as ALIE
from ._attacks import IPM as IPM
from ._attacks import Crash as Crash
from ._attacks import Dissensus as Dissensus
from ._attacks import FangKrum as FangKrum
from ._attacks import FangTrim as FangTrim
from ._attacks import Gaussian as Gaussian
from ._attacks import HiddenVulnerability as HiddenVulnerability
from ._attacks import Isolation as Isolation
from ._attacks import LabelFlip as LabelFlip
from ._attacks import Large as Large
from ._attacks import Mimic as Mimic
from ._attacks import MinMax as MinMax
from ._attacks import MinSum as MinSum
from ._attacks import NoAttack as NoAttack
from ._attacks import SampleDuplicate as SampleDuplicate
from ._attacks import SignFlip as SignFlip
from ._attacks import Spectral as Spectral
from ._attacks import Zero as Zero
from ._math import alie_z as alie_z
from ._math import best_scale as best_scale
from ._math import fiedler_vector as fiedler_vector
from ._base import ATTACKS as ATTACKS
from ._base import Attack as Attack
from ._base import apply as apply
from ._base import attack_spec as attack_spec
from ._base import parameter as parameter
from ._base import register as register
from ._base import resolve as resolve
from ._view import Context as Context
from ._view import Graph as Graph
from ._view import View as View
