"""A finished run's metrics, as the engine returns them (:class:`Result`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..scenario import Scenario
from ..summaries import honest_summaries
from .plan import Plan
from .state import State


@dataclasses.dataclass(frozen=True)
class Result:
    """Metrics of one run.

    Attributes:
        scenario: the scenario that ran.
        rounds: int[E], the round of each evaluation (0 first).
        metrics: name -> array [E, repeats] (over honest nodes) or [E, repeats, honest].
        honest: int[H], the honest node ids (the last axis of per-node metrics).
        byzantine: int[b], the Byzantine node ids.
        final_params: f32[repeats, n, d].
        seconds: wall time of the whole run (build, compilation and rounds).
        diverged_round: the evaluation round at which some replicate's honest parameters
            were first non-finite (the run stopped there; its metrics at that round are
            NaN), or None.
    """

    scenario: Scenario
    rounds: np.ndarray
    metrics: dict
    honest: np.ndarray
    byzantine: np.ndarray
    final_params: np.ndarray
    seconds: float
    diverged_round: int | None = None

    def over_honest(self, name: str, quantiles=(0.1, 0.5, 0.9)) -> dict:
        """A per-node metric summarised over honest nodes at every evaluation, per repeat:
        ``{"mean", "min", "max", "q10", "q50", "q90"}`` each of shape [E, repeats]."""
        values = self.metrics[name]
        if values.ndim != 3:
            raise ValueError(f"{name} is not a per-node metric (shape {values.shape}).")
        return honest_summaries(values, quantiles)

    def final(self, name: str) -> np.ndarray:
        """The metric at the last evaluation: [repeats] or [repeats, honest]."""
        return self.metrics[name][-1]

    def summary(self) -> dict:
        """Final-evaluation figures over honest nodes and repeats (the CLI's table row);
        ``diverged_round`` is None, or the round the run diverged at (its figures NaN)."""
        out = {}
        if "test_accuracy" in self.metrics:
            accuracy = self.final("test_accuracy")
            out.update(accuracy_mean=float(accuracy.mean()), accuracy_min=float(accuracy.min()),
                       accuracy_max=float(accuracy.max()), averaged_accuracy=float(self.final("averaged_accuracy").mean()))
        if "drift" in self.metrics:
            out["drift"] = float(self.final("drift").mean())
        out["consensus_distance"] = float(self.final("consensus_distance").mean())
        out["seconds"] = self.seconds
        out["diverged_round"] = self.diverged_round
        return out


def result_of(plan: Plan, rounds, measured: list[dict], final_states: State, seconds: float) -> Result:
    """Assemble a :class:`Result` from the evaluations' metrics."""
    flags = [bool(np.any(m["diverged"])) for m in measured]
    return Result(
        scenario=plan.scenario,
        rounds=np.asarray(rounds),
        metrics={name: np.stack([m[name] for m in measured]) for name in measured[0]},
        honest=np.flatnonzero(~plan.network.byzantine),
        byzantine=np.flatnonzero(plan.network.byzantine),
        final_params=np.asarray(final_states.params),
        seconds=seconds,
        diverged_round=int(rounds[flags.index(True)]) if any(flags) else None,
    )
