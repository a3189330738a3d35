"""The engine: decentralized learning with robust gossip, vectorized over nodes and repeats.

``simulate(scenario)`` builds everything on the host first (graph, placement, per-node f,
data, model, optimizer, attack) and validates it, so bad input fails before anything
compiles. Then one jitted function runs ``eval_every`` rounds in a ``lax.scan`` and
evaluates; it is compiled once and reused for every evaluation chunk, and replicate runs
are ``vmap``ped. Everything that can change without changing shapes is a traced argument
(learning rate, message-loss probability, f, the rule's and the attack's numeric
parameters), so none of it recompiles.

One round (``order="atc"``, adapt then combine): every node takes ``local_steps`` optimizer
steps on minibatches of its own data (Byzantine nodes too, on their possibly poisoned
data); then ``gossip_steps`` times, every honest node gathers its inbox (itself and its
in-neighbours), the attack rewrites the Byzantine rows of each receiver's inbox, lost
messages are masked out, and the node's rule combines the rest. ``order="cta"`` gossips
first. Byzantine nodes run the same protocol on the messages really sent to them (their
own data poisoned under ``label_flip``): the attack rewrites only what honest nodes
receive, so under ``none`` the network is fully honest.

Memory: the inbox of a block of B receivers is B * K * d floats (K the bucket's widest
inbox); ``[run] block`` sets B (default: the whole bucket at once).

The files, in the order a run meets them: ``plan`` (build and validate on the host),
``diagnostics`` (the threat model of the plan's network: Byzantine in-neighbours
against f, honest connectivity, spectral gap), ``program`` (the static program, traced
inputs and knobs), ``state`` (a replicate's
state), ``local`` (local training), ``gossip`` (one gossip step), ``metrics``, ``round``
(the compiled chunk of rounds), ``run`` (evaluations and :func:`simulate`), ``result``
and ``checkpoint``.
"""

from .checkpoint import state_from_bytes, state_to_bytes
from .diagnostics import ThreatModel, threat_model
from .plan import SEED_PURPOSES, Plan, build, derive_seeds, graph_and_byzantine, optimizer_from
from .program import Inputs, Knobs, Program, inputs_of, knobs_for, poisoned_data, program_of
from .result import Result, result_of
from .round import chunk_function, make_chunk
from .run import diverged, evaluations, simulate
from .state import State, initial_state, initial_states

__all__ = [
    "SEED_PURPOSES", "Inputs", "Knobs", "Plan", "Program", "Result", "State", "ThreatModel", "build", "chunk_function",
    "derive_seeds", "diverged", "evaluations", "graph_and_byzantine", "initial_state", "initial_states", "inputs_of", "knobs_for", "make_chunk",
    "optimizer_from", "poisoned_data", "program_of", "result_of", "simulate", "state_from_bytes", "state_to_bytes",
    "threat_model",
]
