"""Running a plan: its evaluations one chunk at a time, and :func:`simulate` of a scenario."""

from __future__ import annotations

import time

import jax
import numpy as np

from ..scenario import Scenario
from .plan import Plan, build
from .program import inputs_of, knobs_for
from .result import Result, result_of
from .round import make_chunk
from .state import State, initial_states


def evaluations(plan: Plan, *, start: tuple[int, State] | None = None, progress: bool = False):
    """Run ``plan``, yielding ``(round, states, metrics)`` at every evaluation.

    The first is round 0 (before any training), then every ``eval_every`` rounds up to
    ``rounds``. ``start=(round, states)`` resumes from a checkpoint taken at an evaluation
    (that evaluation is not yielded again); the continuation is bit for bit the
    uninterrupted run. ``metrics`` are host numpy arrays ([repeats] or [repeats, honest]).

    A run stops at the first evaluation at which a replicate has :func:`diverged` (its
    honest parameters non-finite): that evaluation is the last one yielded.
    """
    run = plan.scenario.run
    chunk, evaluate = make_chunk(plan)
    inputs = inputs_of(plan)
    knobs = knobs_for(plan)
    if start is None:
        states = initial_states(plan)
        first = 0
        measured = jax.device_get(evaluate(states, inputs))
        yield 0, states, measured
        if diverged(measured):
            return
    else:
        first, states = start
        if first % run.eval_every or not 0 <= first <= run.rounds:
            raise ValueError(f"cannot resume at round {first}: not an evaluation round of this run.")
    rounds = range(first + run.eval_every, run.rounds + 1, run.eval_every)
    if progress:
        from tqdm import tqdm

        rounds = tqdm(rounds, desc="rounds", unit=f"x{run.eval_every}", leave=False)
    for round_index in rounds:
        states, measured = chunk(states, knobs, inputs)
        measured = jax.device_get(measured)
        yield round_index, states, measured
        if diverged(measured):
            return


def diverged(metrics: dict) -> bool:
    """Whether any replicate of an evaluation's ``metrics`` has diverged: some honest
    node's parameters are non-finite (see :mod:`decentral.engine.metrics`)."""
    return bool(np.any(metrics["diverged"]))


def simulate(scenario: Scenario, *, progress: bool = False) -> Result:
    """Run ``scenario`` (which must not hold a sweep: see :meth:`Scenario.points`)."""
    if scenario.sweep:
        raise ValueError("simulate runs one point; iterate over scenario.points() for a sweep (or use `decentral run`).")
    began = time.perf_counter()
    plan = build(scenario)
    rounds, measured, states = [], [], None
    for round_index, states, metrics in evaluations(plan, progress=progress):
        rounds.append(round_index)
        measured.append(metrics)
    return result_of(plan, rounds, measured, states, time.perf_counter() - began)
