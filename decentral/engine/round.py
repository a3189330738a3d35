"""The compiled loop: one round (local steps, then gossip steps, or the reverse), a chunk of
``eval_every`` rounds in a ``lax.scan`` followed by the metrics, vmapped over replicates.

Compiled once per :class:`~decentral.engine.program.Program` (an LRU cache), so a sweep
over anything traced reuses one compilation.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from .gossip import make_gossip
from .local import make_local_steps
from .metrics import make_metrics
from .plan import Plan
from .program import Inputs, Knobs, Program, program_of
from .state import State


def make_chunk(plan: Plan):
    """The jitted ``chunk(states, knobs, inputs) -> (states, metrics)`` (eval_every rounds,
    then metrics) and ``evaluate(states, inputs) -> metrics`` of ``plan``'s program, shared
    with every plan of the same program (see :class:`Program`); pass ``inputs_of(plan)``."""
    return _compile(program_of(plan))


def chunk_function(plan: Plan):
    """``chunk(states, knobs, inputs) -> (states, metrics)`` of ``plan``'s program as
    :func:`make_chunk` returns it, but not jitted: for a caller that transforms it further
    (``vmap`` over placements, :mod:`decentral.place_score`) and jits the result itself."""
    return _functions(program_of(plan))[0]


@functools.lru_cache(maxsize=32)
def _compile(program: Program):
    chunk, evaluate = _functions(program)
    options = {"xla_backend_optimization_level": program.optimization}
    return jax.jit(chunk, compiler_options=options), jax.jit(evaluate, compiler_options=options)


@functools.lru_cache(maxsize=32)
def _functions(program: Program):
    """The program's chunk and evaluation, vmapped over replicates, not yet jitted."""
    gossip = make_gossip(program)
    local = make_local_steps(program) if program.task == "train" else None
    metrics = make_metrics(program)
    slots = program.delay + 1

    def exchange(messages, history, round_index, inputs):
        """What neighbours receive: stragglers' messages are ``delay`` rounds old."""
        if history is None:
            return messages, None
        stale = history[(round_index - program.delay) % slots]
        return jnp.where(inputs.stragglers[:, None], stale, messages), history.at[round_index % slots].set(messages)

    def one_round(state: State, knobs: Knobs, inputs: Inputs):
        key, k_local, k_gossip = jax.random.split(state.key, 3)
        params, opt_state, attack_state = state.params, state.opt_state, state.attack_state
        frozen = (inputs.crashed & (state.round >= knobs.crash_round))[:, None]
        before = params
        if local is not None and program.order == "atc":
            params, opt_state = local(params, opt_state, k_local, state.round, knobs.attack, inputs)
        messages = params - before if program.gossip == "updates" else params
        history = state.history
        for step in range(program.gossip_steps):
            sent, recorded = exchange(messages, history, state.round, inputs)
            history = recorded if step == 0 else history
            # every gossip step of a round starts from the round's attack state, and the
            # round keeps the state its first step returns: the attack's memory (Mimic's
            # warm-up counter) advances once per round, whatever gossip_steps is
            messages, stepped = gossip(
                messages, sent, state.attack_state, jax.random.fold_in(k_gossip, step), state.round, knobs, inputs
            )
            attack_state = stepped if step == 0 else attack_state
        params = before + messages if program.gossip == "updates" else messages
        if local is not None and program.order == "cta":
            params, opt_state = local(params, opt_state, k_local, state.round, knobs.attack, inputs)
        params = jnp.where(frozen, before, params)
        return dataclasses.replace(
            state, params=params, opt_state=opt_state, attack_state=attack_state, key=key, round=state.round + 1,
            history=history,
        )

    def chunk_one(state: State, knobs: Knobs, inputs: Inputs):
        state, _ = jax.lax.scan(lambda s, _: (one_round(s, knobs, inputs), None), state, None, length=program.eval_every)
        return state, metrics(state.params, state.start_center, inputs)

    chunk = jax.vmap(chunk_one, in_axes=(0, None, None))
    evaluate = jax.vmap(lambda state, inputs: metrics(state.params, state.start_center, inputs), in_axes=(0, None))
    return chunk, evaluate
